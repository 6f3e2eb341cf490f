const roomName = JSON.parse(document.getElementById("room-name").textContent);
const log = document.getElementById("chat-log");
const form = document.getElementById("chat-form");
const input = document.getElementById("chat-message-input");
const status = document.getElementById("connection-status");

const scheme = window.location.protocol === "https:" ? "wss" : "ws";
const RECONNECT_DELAY = 1000;
let socket;
let lastId = 0;

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

function connect() {
    // After a reconnect, the server sends only what this page has not seen yet.
    socket = new WebSocket(`${scheme}://${window.location.host}/ws/chat/${roomName}/?after=${lastId}`);

    socket.addEventListener("open", () => {
        showStatus("open", "Connected");
        input.disabled = false;
    });

    socket.addEventListener("close", () => {
        showStatus("closed", "Disconnected: reconnecting…");
        input.disabled = true;
        setTimeout(connect, RECONNECT_DELAY);
    });

    socket.addEventListener("message", (event) => {
        const data = JSON.parse(event.data);
        if (data.error) {
            addToLog(data.error, "error");
            return;
        }
        lastId = Math.max(lastId, data.id);
        addToLog(data.message, "message", data.author);
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
