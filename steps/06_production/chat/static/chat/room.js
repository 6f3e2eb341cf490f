const roomName = JSON.parse(document.getElementById("room-name").textContent);
const log = document.getElementById("chat-log");
const form = document.getElementById("chat-form");
const input = document.getElementById("chat-message-input");
const status = document.getElementById("connection-status");

const scheme = window.location.protocol === "https:" ? "wss" : "ws";
// The server closes with this code when the session logs out: reconnecting would be refused.
const LOGGED_OUT = 4401;
const FIRST_RETRY_DELAY = 500;
const LONGEST_RETRY_DELAY = 8000;
let socket;
let retryDelay = FIRST_RETRY_DELAY;
// Every message up to lastNumber is on the page; so are those in ahead, which arrived before one they follow.
let lastNumber = 0;
const ahead = new Set();

function showStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
}

function addToLog(text, className) {
    const entry = document.createElement("li");
    entry.textContent = text;
    entry.className = className;
    log.append(entry);
    entry.scrollIntoView({ block: "nearest" });
}

function isNew(number) {
    if (number <= lastNumber || ahead.has(number)) {
        return false;
    }
    ahead.add(number);
    catchUp();
    return true;
}

function startHistoryAfter(number) {
    // The server sends no older messages: stop waiting for them.
    if (number > lastNumber) {
        lastNumber = number;
        ahead.forEach((seen) => seen <= number && ahead.delete(seen));
        catchUp();
    }
}

function catchUp() {
    while (ahead.delete(lastNumber + 1)) {
        lastNumber += 1;
    }
}

function connect() {
    // After a reconnect, the server sends only what this page has not seen yet.
    socket = new WebSocket(`${scheme}://${window.location.host}/ws/chat/${roomName}/?after=${lastNumber}`);

    socket.addEventListener("open", () => {
        retryDelay = FIRST_RETRY_DELAY;
        showStatus("open", "Connected");
        input.disabled = false;
    });

    socket.addEventListener("close", (event) => {
        input.disabled = true;
        if (event.code === LOGGED_OUT) {
            showStatus("closed", "Logged out: log in again to chat.");
            return;
        }
        showStatus("closed", `Disconnected: reconnecting in ${retryDelay / 1000} s.`);
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, LONGEST_RETRY_DELAY);
    });

    socket.addEventListener("message", (event) => {
        const data = JSON.parse(event.data);
        if (data.error) {
            addToLog(data.error, "error");
        } else if ("history_after" in data) {
            startHistoryAfter(data.history_after);
        } else if (isNew(data.number)) {
            addToLog(`${data.author}: ${data.message}`, "message");
        }
    });
}

connect();

form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (socket.readyState !== WebSocket.OPEN || !input.value.trim()) {
        return;
    }
    socket.send(JSON.stringify({ message: input.value }));
    input.value = "";
});
