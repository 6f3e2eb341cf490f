const roomName = JSON.parse(document.getElementById("room-name").textContent);
const log = document.getElementById("chat-log");
const form = document.getElementById("chat-form");
const input = document.getElementById("chat-message-input");
const sendButton = document.getElementById("chat-message-submit");
const status = document.getElementById("connection-status");

const scheme = window.location.protocol === "https:" ? "wss" : "ws";
// The server closes with this code when the session logs out: reconnecting would be refused.
const LOGGED_OUT = 4401;
const FIRST_RETRY_DELAY = 500;
const LONGEST_RETRY_DELAY = 8000;
let socket;
let retryDelay = FIRST_RETRY_DELAY;
// The number of the room's latest message on the page.
let lastNumber = 0;

function showStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
}

function addToLog(text, className, author) {
    const entry = document.createElement("li");
    entry.textContent = text;
    entry.className = className;
    if (author) {
        // The name in bold, in an element of its own: a line break in a message cannot fake another author's line.
        entry.prepend(Object.assign(document.createElement("b"), { className: "author", textContent: author }), ": ");
    }
    log.append(entry);
    entry.scrollIntoView({ block: "nearest" });
}

function show(message) {
    lastNumber = Math.max(lastNumber, message.number);
    addToLog(message.message, "message", message.author);
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
            if (data.retry_after) {
                // The server is busy: send nothing for as long as it asks. A disabled button stops Enter too.
                sendButton.disabled = true;
                setTimeout(() => (sendButton.disabled = false), data.retry_after * 1000);
            }
        } else if ("history_after" in data) {
            // The server sends no older messages: say how many are left out.
            addToLog(`${data.history_after - lastNumber} earlier messages are not shown.`, "notice");
        } else {
            data.messages.forEach(show);
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
