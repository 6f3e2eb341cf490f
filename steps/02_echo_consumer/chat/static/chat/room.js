const roomName = JSON.parse(document.getElementById("room-name").textContent);
const log = document.getElementById("chat-log");
const form = document.getElementById("chat-form");
const input = document.getElementById("chat-message-input");
const status = document.getElementById("connection-status");

const scheme = window.location.protocol === "https:" ? "wss" : "ws";
const socket = new WebSocket(`${scheme}://${window.location.host}/ws/chat/${roomName}/`);

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

socket.addEventListener("open", () => showStatus("open", "Connected"));

socket.addEventListener("close", () => {
    showStatus("closed", "Disconnected: reload the page to reconnect.");
    input.disabled = true;
});

socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    addToLog(data.error ?? data.message, data.error ? "error" : "message");
});

form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (socket.readyState !== WebSocket.OPEN || !input.value.trim()) {
        return;
    }
    socket.send(JSON.stringify({ message: input.value }));
    input.value = "";
});
