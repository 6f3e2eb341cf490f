const roomName = JSON.parse(document.getElementById("room-name").textContent);
const log = document.getElementById("chat-log");
const form = document.getElementById("chat-form");
const input = document.getElementById("chat-message-input");
const sendButton = document.getElementById("chat-message-submit");
const status = document.getElementById("connection-status");

const scheme = window.location.protocol === "https:" ? "wss" : "ws";
// The server closes with this code when the session logs out: reconnecting would be refused.
const LOGGED_OUT = 4401;
// A server that stops closes with this code, once it has saved what it took: another one takes the page at once.
const SERVICE_RESTART = 1012;
const FIRST_RETRY_DELAY = 500;
const LONGEST_RETRY_DELAY = 8000;
// Two processes may deliver a room's messages out of order; a number still missing after this is asked for.
const GAP_WAIT = 1000;
let socket;
let retryDelay = FIRST_RETRY_DELAY;
// Every message up to lastNumber is on the page; so are those in ahead, which arrived before one they follow.
let lastNumber = 0;
const ahead = new Set();
let gapTimer = null;
// What this page sent and the server has not yet said it saved, by the id the page gave each: sent again on reconnect.
const unsaved = new Map();

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

function recordNumber(number) {
    // Whether the message is new to the page, which from now on counts it as shown.
    if (number <= lastNumber || ahead.has(number)) {
        return false;
    }
    ahead.add(number);
    catchUp();
    return true;
}

function startHistoryAfter(number) {
    // The server sends no older messages: say how many are left out, and stop waiting for them.
    if (number > lastNumber) {
        addToLog(`${number - lastNumber} earlier messages are not shown.`, "notice");
        lastNumber = number;
        ahead.forEach((seen) => seen <= number && ahead.delete(seen));
        catchUp();
    }
}

function catchUp() {
    while (ahead.delete(lastNumber + 1)) {
        lastNumber += 1;
    }
    if (ahead.size && gapTimer === null) {
        gapTimer = setTimeout(askForTheMissing, GAP_WAIT);
    }
}

function askForTheMissing() {
    gapTimer = null;
    if (ahead.size && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ fetch_after: lastNumber }));
    }
}

function show(message) {
    // The message is saved: if this page sent it, it need not send it again.
    unsaved.delete(message.client_id);
    if (recordNumber(message.number)) {
        addToLog(message.message, "message", message.author);
    }
}

function sendMessage(clientId, text) {
    unsaved.set(clientId, text);
    socket.send(JSON.stringify({ message: text, client_id: clientId }));
}

function connect() {
    // After a reconnect, the server sends only what this page has not seen yet.
    socket = new WebSocket(`${scheme}://${window.location.host}/ws/chat/${roomName}/?after=${lastNumber}`);

    socket.addEventListener("open", () => {
        retryDelay = FIRST_RETRY_DELAY;
        showStatus("open", "Connected");
        input.disabled = false;
        unsaved.forEach((text, clientId) => sendMessage(clientId, text));
    });

    socket.addEventListener("close", (event) => {
        input.disabled = true;
        if (event.code === LOGGED_OUT) {
            showStatus("closed", "Logged out: log in again to chat.");
            return;
        }
        const delay = event.code === SERVICE_RESTART ? 0 : retryDelay;
        showStatus("closed", `Disconnected: reconnecting in ${delay / 1000} s.`);
        setTimeout(connect, delay);
        retryDelay = delay ? Math.min(retryDelay * 2, LONGEST_RETRY_DELAY) : retryDelay;
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
            if (unsaved.has(data.refused)) {
                // Not saved, and never will be: back in the input, to send again.
                input.value ||= unsaved.get(data.refused);
                unsaved.delete(data.refused);
            }
        } else if ("history_after" in data) {
            startHistoryAfter(data.history_after);
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
    // Random, so that no one else can tell the id of this page's next message.
    sendMessage(Array.from(crypto.getRandomValues(new Uint32Array(3)), (part) => part.toString(36)).join("-"), input.value);
    input.value = "";
});
