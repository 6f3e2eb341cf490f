import json
import logging
import time

from channels.layers import get_channel_layer

from chat.close_codes import FELL_BEHIND
from chat.limits import MAX_DELAY_SECONDS


def frame(id, text):
    return {"id": id, "author": "alice", "message": text, "created": "2026-01-01T00:00:00+00:00"}


async def test_socket_that_falls_behind_the_room_is_told_and_closed(open_socket, room_name, caplog):
    socket = await open_socket()
    read_long_ago = time.time() - MAX_DELAY_SECONDS - 1
    event = {"type": "chat.message", "frame": frame(1, "old"), "read_at": read_long_ago}

    await get_channel_layer().group_send(f"chat_{room_name}", event)

    error = json.loads((await socket.receive_output())["text"])["error"]
    assert error.startswith(f"This connection fell {MAX_DELAY_SECONDS + 1} seconds behind")
    assert await socket.receive_output() == {"type": "websocket.close", "code": FELL_BEHIND}
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert warning.getMessage().startswith(f"chat_{room_name}: closed a socket {MAX_DELAY_SECONDS + 1}.")


async def test_socket_keeping_up_gets_every_message(open_socket, room_name):
    socket = await open_socket()
    read_just_now = time.time() - MAX_DELAY_SECONDS + 1
    event = {"type": "chat.message", "frame": frame(1, "new"), "read_at": read_just_now}

    await get_channel_layer().group_send(f"chat_{room_name}", event)

    assert await socket.receive_json_from() == frame(1, "new")
