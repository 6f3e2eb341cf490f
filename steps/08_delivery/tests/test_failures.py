import asyncio

import pytest
from channels_redis.pubsub import RedisPubSubLoopLayer
from django.db import DatabaseError
from redis.exceptions import ConnectionError as RedisConnectionError

from chat import saver
from chat.close_codes import REDIS_UNREACHABLE, SAVE_FAILED
from chat.consumers import NOT_SAVED
from chat.models import Message

pytestmark = pytest.mark.database


@pytest.fixture
def first_save(monkeypatch):
    """The first batch waits until the test lets it go on, then fails, as a database that stays locked makes it.

    Yields an event set once the first batch is being saved, and one that lets it fail.
    """
    began, may_go_on = asyncio.Event(), asyncio.Event()
    save_batch = saver.save_batch

    async def failing_save_batch(batch):
        if not began.is_set():
            began.set()
            await asyncio.wait_for(may_go_on.wait(), 5)
            raise DatabaseError("database is locked")
        return await save_batch(batch)

    monkeypatch.setattr(saver, "save_batch", failing_save_batch)
    return began, may_go_on


async def send_and_see_them_read(socket, client_ids):
    for client_id in client_ids:
        await socket.send_json_to({"message": f"message {client_id}", "client_id": client_id})
    # Refused at once, without the database: the answer shows the messages before it were read.
    await socket.send_json_to({"message": "", "client_id": "empty"})
    assert (await socket.receive_json_from())["refused"] == "empty"


async def test_a_save_that_fails_names_what_was_not_saved_and_closes_so_that_the_page_sends_it_again(
    open_socket, first_save, caplog
):
    began, may_fail = first_save
    socket = await open_socket()
    await send_and_see_them_read(socket, ["page-0"])
    await asyncio.wait_for(began.wait(), 5)
    await send_and_see_them_read(socket, ["page-1", "page-2"])  # they wait for the next batch

    may_fail.set()

    assert await socket.receive_json_from() == {"error": NOT_SAVED, "not_saved": ["page-0", "page-1", "page-2"]}
    assert await socket.receive_output() == {"type": "websocket.close", "code": SAVE_FAILED}
    assert "Could not save 1 messages" in caplog.text
    assert await Message.objects.acount() == 0


async def test_messages_sent_again_after_a_failed_save_are_each_saved_once(open_socket, first_save):
    socket = await open_socket()
    await send_and_see_them_read(socket, ["page-0", "page-1"])
    first_save[1].set()
    await socket.receive_output()

    reconnected = await open_socket()
    for client_id in ["page-0", "page-1", "page-0"]:
        await reconnected.send_json_to({"message": f"message {client_id}", "client_id": client_id})

    frames = [await reconnected.receive_json_from() for _ in range(3)]
    # The answer to a message saved before comes straight back, maybe before the room's broadcast of another.
    assert sorted((frame["client_id"], frame["number"]) for frame in frames) == [
        ("page-0", 1),
        ("page-0", 1),
        ("page-1", 2),
    ]
    assert await Message.objects.acount() == 2


@pytest.fixture
def first_broadcast_fails(monkeypatch, room_name):
    """The room's first broadcast meets Redis gone."""
    failed = []
    group_send = RedisPubSubLoopLayer.group_send

    async def failing_group_send(self, group, message):
        if group == f"chat_{room_name}" and not failed:
            failed.append(message)
            raise RedisConnectionError("Connection closed by server.")
        await group_send(self, group, message)

    monkeypatch.setattr(RedisPubSubLoopLayer, "group_send", failing_group_send)


async def test_a_broadcast_that_fails_keeps_the_message_saved_and_its_page_gets_it_on_reconnecting(
    open_socket, first_broadcast_fails
):
    socket = await open_socket()
    await socket.send_json_to({"message": "hello", "client_id": "page-0"})

    assert await socket.receive_output() == {"type": "websocket.close", "code": REDIS_UNREACHABLE}
    assert [message.client_id async for message in Message.objects.all()] == ["page-0"]

    # The page reconnects, gets page-0 in the history, and sends it again all the same: it is not saved twice.
    reconnected = await open_socket()
    history = await reconnected.receive_json_from()
    await reconnected.send_json_to({"message": "hello", "client_id": "page-0"})
    assert await reconnected.receive_json_from() == history
    assert await Message.objects.acount() == 1
