import asyncio

import pytest
from channels_redis.pubsub import RedisPubSubLoopLayer
from django.db import DatabaseError
from redis.exceptions import ConnectionError as RedisConnectionError

from chat import saver
from chat.close_codes import REDIS_UNREACHABLE, SAVE_FAILED
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


async def send_and_see_them_read(socket, count):
    for number in range(count):
        await socket.send_json_to({"message": f"message {number}"})
    # Refused at once, without the database: the answer shows the messages before it were read.
    await socket.send_json_to({"message": ""})
    assert "error" in await socket.receive_json_from()


async def test_a_save_that_fails_says_how_many_messages_were_not_saved_and_closes(open_socket, first_save, caplog):
    began, may_fail = first_save
    socket = await open_socket()
    await send_and_see_them_read(socket, 1)
    await asyncio.wait_for(began.wait(), 5)
    await send_and_see_them_read(socket, 2)  # they wait for the next batch

    may_fail.set()

    assert await socket.receive_json_from() == {"error": "Your latest messages were not saved: 3 in all."}
    assert await socket.receive_output() == {"type": "websocket.close", "code": SAVE_FAILED}
    assert "Could not save 1 messages" in caplog.text
    assert await Message.objects.acount() == 0


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
    await socket.send_json_to({"message": "hello"})

    assert await socket.receive_output() == {"type": "websocket.close", "code": REDIS_UNREACHABLE}
    assert [message.body async for message in Message.objects.all()] == ["hello"]

    reconnected = await open_socket()
    assert (await reconnected.receive_json_from())["message"] == "hello"
