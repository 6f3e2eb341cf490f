const form = document.getElementById("room-form");
const input = document.getElementById("room-name-input");
const error = document.getElementById("room-name-error");
const pattern = JSON.parse(document.getElementById("room-name-pattern").textContent);
const allowed = new RegExp(`^(?:${pattern})$`);

form.addEventListener("submit", (event) => {
    event.preventDefault();
    const roomName = input.value.trim();
    if (!allowed.test(roomName)) {
        error.hidden = false;
        input.focus();
        return;
    }
    window.location.assign(`/chat/${roomName}/`);
});

input.addEventListener("input", () => {
    error.hidden = true;
});
