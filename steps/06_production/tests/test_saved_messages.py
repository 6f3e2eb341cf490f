import asyncio
import time
from datetime import datetime, timezone

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.db.backends.utils import CursorWrapper

from chat import consumers
from chat.consumers import HISTORY_LENGTH, as_frame
from chat.models import Message, Room


async def save_messages(room_name, count, author="bob"):
    """Saves `count` messages in the room, numbered after those it has, as the consumer numbers them."""
    room, _ = await Room.objects.aget_or_create(name=room_name)
    user, _ = await get_user_model().objects.aget_or_create(username=author)
    first = room.message_count + 1
    await Room.objects.filter(pk=room.pk).aupdate(message_count=room.message_count + count)
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


async def test_saving_a_message_numbers_it_in_one_transaction(open_socket, room_name, queries):
    socket = await open_socket(room_name)
    await history_of(socket)
    queries.clear()

    await socket.send_json_to({"message": "hello"})
    await socket.receive_json_from()

    assert [sql.split()[0] for sql in queries] == ["BEGIN", "UPDATE", "SELECT", "INSERT"]


async def test_messages_sent_at_once_get_the_rooms_next_numbers_without_gaps(open_socket, room_name):
    await save_messages(room_name, 3)
    listener = await open_socket(room_name, query="after=3")
    senders = [await open_socket(room_name, query="after=3") for _ in range(4)]

    for number, sender in enumerate(senders):
        await sender.send_json_to({"message": f"at once {number}"})
    frames = [await listener.receive_json_from() for _ in senders]

    assert sorted(frame["number"] for frame in frames) == [4, 5, 6, 7]


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
    assert [frame["number"] for frame in await history_of(socket)] == [message.number]

    # As if its sender's broadcast had been slower than this socket's reading of the history.
    event = {"type": "chat.message", "frame": as_frame(message), "sent_at": time.time()}
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


async def test_a_socket_goes_on_receiving_while_its_own_message_is_being_saved(open_socket, room_name, monkeypatch):
    saving, saved = asyncio.Event(), asyncio.Event()
    save = consumers.save_message

    async def slow_save(*args):
        saving.set()
        await saved.wait()
        return await save(*args)

    monkeypatch.setattr(consumers, "save_message", slow_save)
    sender = await open_socket(room_name)
    await sender.send_json_to({"message": "takes a while to save"})
    await asyncio.wait_for(saving.wait(), 5)
    frame = {"id": 99, "number": 99, "author": "bob", "message": "from bob", "created": "2026-01-01T00:00:00+00:00"}

    await get_channel_layer().group_send(
        f"chat_{room_name}", {"type": "chat.message", "frame": frame, "sent_at": time.time()}
    )

    assert (await sender.receive_json_from())["message"] == "from bob"
    saved.set()
    assert (await sender.receive_json_from())["message"] == "takes a while to save"


async def test_a_socket_whose_message_cannot_be_saved_is_closed_with_a_log_line(open_socket, monkeypatch, caplog):
    async def failing_save(*args):
        raise DatabaseError("database or disk is full")

    monkeypatch.setattr(consumers, "save_message", failing_save)
    socket = await open_socket()

    await socket.send_json_to({"message": "nowhere to keep it"})

    assert (await socket.receive_output())["type"] == "websocket.close"
    [record] = [record for record in caplog.records if record.name == "chat.consumers"]
    assert "could not be saved" in record.getMessage() and str(record.exc_info[1]) == "database or disk is full"
