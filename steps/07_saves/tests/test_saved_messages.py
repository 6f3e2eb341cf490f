import time
from datetime import datetime, timezone

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db.backends.utils import CursorWrapper

from chat.consumers import HISTORY_LENGTH
from chat.models import Message, Room
from chat.saver import as_frame, as_json

pytestmark = pytest.mark.database


async def save_messages(room_name, count, author="bob"):
    """Saves `count` messages in the room, numbered after those it has, as the saver numbers them."""
    room, _ = await Room.objects.aget_or_create(name=room_name)
    user, _ = await get_user_model().objects.aget_or_create(username=author)
    first = room.last_number + 1
    await Room.objects.filter(pk=room.pk).aupdate(last_number=room.last_number + count)
    return await Message.objects.abulk_create(
        [Message(room=room, number=first + n, author=user, body=f"message {n + 1}") for n in range(count)]
    )


async def history_of(socket):
    """The frames a socket got on joining: those before the echo of a message it sends after the handshake."""
    await socket.send_json_to({"message": "end of history"})
    frames = []
    while (frame := await socket.receive_json_from()).get("message") != "end of history":
        frames.append(frame)
    return frames


@pytest.fixture
def queries(monkeypatch):
    """Every SQL statement any thread runs from now on."""
    statements = []
    execute = CursorWrapper.execute

    def recording_execute(self, sql, params=None):
        statements.append(sql)
        return execute(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", recording_execute)
    return statements


async def test_message_is_saved_with_the_logged_in_author_whatever_the_client_claims(open_socket, room_name):
    socket = await open_socket(room_name)

    await socket.send_json_to({"message": "trust me", "author": "mallory"})
    frame = await socket.receive_json_from()

    saved = await Message.objects.select_related("author", "room").aget()
    assert (saved.author.username, saved.room.name, saved.body) == ("alice", room_name, "trust me")
    assert frame["author"] == "alice"


async def test_frame_carries_the_saved_messages_id_number_author_body_and_utc_time(open_socket, room_name):
    socket = await open_socket(room_name)

    await socket.send_json_to({"message": "hello"})
    frame = await socket.receive_json_from()

    saved = await Message.objects.aget()
    assert frame == {
        "id": saved.id,
        "number": 1,
        "author": "alice",
        "message": "hello",
        "created": saved.created.isoformat(),
    }
    assert datetime.fromisoformat(frame["created"]).utcoffset() == timezone.utc.utcoffset(None)


async def test_refused_messages_are_not_saved(open_socket, room_name):
    socket = await open_socket(room_name)

    await socket.send_json_to({"message": ""})
    await socket.send_json_to({"message": "x" * 1001})
    assert "error" in await socket.receive_json_from()
    assert "error" in await socket.receive_json_from()

    assert await Message.objects.acount() == 0


async def test_joining_shows_the_latest_messages_oldest_first_saying_where_they_start(open_socket, room_name):
    await save_messages(room_name, HISTORY_LENGTH + 5)

    start, *history = await history_of(await open_socket(room_name))

    assert start == {"history_after": 5}
    assert [frame["message"] for frame in history] == [f"message {n}" for n in range(6, HISTORY_LENGTH + 6)]
    assert {frame["author"] for frame in history} == {"bob"}


async def test_history_holds_only_the_rooms_own_messages(open_socket, room_name):
    await save_messages(f"{room_name}-next-door", 3)

    assert await history_of(await open_socket(room_name)) == []


async def test_reconnecting_after_a_number_gets_exactly_the_messages_after_it(open_socket, room_name):
    seen = await save_messages(room_name, 3)
    missed = await save_messages(room_name, 2)

    history = await history_of(await open_socket(room_name, query=f"after={seen[-1].number}"))

    assert [frame["number"] for frame in history] == [message.number for message in missed] == [4, 5]


async def test_a_broadcast_of_a_message_already_in_the_history_is_not_sent_again(open_socket, room_name):
    [message] = await save_messages(room_name, 1)
    socket = await open_socket(room_name)
    assert [frame["number"] for frame in await history_of(socket)] == [1]

    # As if its sender's broadcast had been slower than this socket's reading of the history.
    event = {"type": "chat.messages", "first": 1, "last": 1, "frame": as_frame([as_json(message)])}
    event["read_at"] = time.time()
    await get_channel_layer().group_send(f"chat_{room_name}", event)
    await socket.send_json_to({"message": "next"})

    assert (await socket.receive_json_from())["message"] == "next"


async def test_markup_is_saved_verbatim_and_escaped_by_the_admin(open_socket, room_name, admin_client):
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    socket = await open_socket(room_name)

    await socket.send_json_to({"message": payload})

    assert (await socket.receive_json_from())["message"] == payload
    assert (await Message.objects.aget()).body == payload
    html = (await sync_to_async(admin_client.get)("/admin/chat/message/")).content.decode()
    assert payload not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


async def test_admin_lists_the_rooms(admin_client, open_socket, room_name):
    await open_socket(room_name)

    html = (await sync_to_async(admin_client.get)("/admin/chat/room/")).content.decode()

    assert room_name in html
