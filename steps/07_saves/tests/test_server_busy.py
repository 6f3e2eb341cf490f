import json

import pytest

from chat import saver
from chat.consumers import RETRY_AFTER_SECONDS, SERVER_BUSY
from chat.models import Message

pytestmark = pytest.mark.database


async def test_a_socket_with_too_many_messages_waiting_to_be_saved_is_told_the_next_is_not_saved(
    open_socket, held_saves, monkeypatch
):
    monkeypatch.setattr(saver, "MAX_UNSAVED_PER_SOCKET", 3)
    socket = await open_socket()

    for number in range(4):
        await socket.send_json_to({"message": f"message {number}"})

    refusal = await socket.receive_json_from()
    assert (refusal["error"], refusal["retry_after"]) == (SERVER_BUSY, RETRY_AFTER_SECONDS)
    held_saves.set()
    assert [(await socket.receive_json_from())["message"] for _ in range(3)] == ["message 0", "message 1", "message 2"]
    assert await socket.receive_nothing()


async def test_a_process_with_too_many_messages_waiting_to_be_saved_refuses_more(open_socket, held_saves, monkeypatch):
    monkeypatch.setattr(saver, "MAX_UNSAVED", 3)
    sockets = [await open_socket() for _ in range(4)]

    for number, socket in enumerate(sockets):
        await socket.send_json_to({"message": f"message {number}"})

    assert (await sockets[3].receive_json_from())["error"] == SERVER_BUSY
    held_saves.set()
    assert sorted([(await sockets[0].receive_json_from())["message"] for _ in range(3)]) == [
        "message 0",
        "message 1",
        "message 2",
    ]


async def test_a_process_whose_deliveries_run_late_refuses_new_messages_until_they_catch_up(open_socket):
    socket = await open_socket()
    the_saver = saver.Saver.of_this_process()

    the_saver.note_delivery(saver.MAX_DELIVERY_LAG_SECONDS + 0.1)
    await socket.send_json_to({"message": "late"})
    refused = await socket.receive_json_from()
    the_saver.late_until = 0  # as a second after the late delivery
    await socket.send_json_to({"message": "on time"})

    assert refused["error"] == SERVER_BUSY
    assert (await socket.receive_json_from())["message"] == "on time"
    assert [message.body async for message in Message.objects.all()] == ["on time"]


async def test_a_frame_is_encoded_once_whatever_the_number_of_sockets_in_the_room(open_socket, monkeypatch):
    sockets = [await open_socket() for _ in range(5)]
    encoded = []
    dumps = json.dumps
    await sockets[0].send_json_to({"message": "to everyone"})

    monkeypatch.setattr(json, "dumps", lambda *args, **kwargs: encoded.append(args) or dumps(*args, **kwargs))
    frames = [await socket.receive_json_from() for socket in sockets]

    assert {frame["message"] for frame in frames} == {"to everyone"}
    assert len(encoded) == 1
