import json
import logging
import time

from channels.layers import get_channel_layer

from chat.close_codes import FELL_BEHIND
from chat.limits import MAX_DELAY_SECONDS


def frame(number, text):
    return {"id": number, "number": number, "author": "alice", "message": text, "created": "2026-01-01T00:00:00+00:00"}


def batch(number, text, read_at):
    as_frame = json.dumps({"messages": [frame(number, text)]})
    return {"type": "chat.messages", "first": number, "last": number, "frame": as_frame, "read_at": read_at}


async def test_socket_that_falls_behind_the_room_is_told_and_closed(open_socket, room_name, caplog):
    socket = await open_socket()
    read_long_ago = time.time() - MAX_DELAY_SECONDS - 1

    await get_channel_layer().group_send(f"chat_{room_name}", batch(1, "old", read_long_ago))

    error = json.loads((await socket.receive_output())["text"])["error"]
    assert error.startswith(f"This connection fell {MAX_DELAY_SECONDS + 1} seconds behind")
    assert await socket.receive_output() == {"type": "websocket.close", "code": FELL_BEHIND}
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert warning.getMessage().startswith(f"chat_{room_name}: closed a socket {MAX_DELAY_SECONDS + 1}.")


async def test_socket_keeping_up_gets_every_message(open_socket, room_name):
    socket = await open_socket()
    read_just_now = time.time() - MAX_DELAY_SECONDS + 1

    await get_channel_layer().group_send(f"chat_{room_name}", batch(1, "new", read_just_now))

    assert await socket.receive_json_from() == frame(1, "new")
