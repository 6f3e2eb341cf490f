import asyncio
import json

import pytest
from django.db import connection
from django.db.backends.utils import CursorWrapper

from chat import saver
from servers import eventually

pytestmark = pytest.mark.database


@pytest.fixture
async def batches(monkeypatch):
    """The size of every batch saved from now on; the first waits until the test lets it go on.

    Yields the sizes, a function that returns once the first batch is being saved, and one that lets it go on once
    `count` messages wait behind it.
    """
    sizes, first_began, first_may_go_on = [], asyncio.Event(), asyncio.Event()
    save_batch = saver.save_batch

    async def recorded_save_batch(batch):
        sizes.append(len(batch))
        if len(sizes) == 1:
            first_began.set()
            await asyncio.wait_for(first_may_go_on.wait(), 5)
        return await save_batch(batch)

    async def first_is_being_saved():
        await asyncio.wait_for(first_began.wait(), 5)

    async def let_the_first_go_on_once_waiting(count):
        await eventually(lambda: len(saver.Saver.of_this_process().waiting) == count)
        first_may_go_on.set()

    monkeypatch.setattr(saver, "save_batch", recorded_save_batch)
    return sizes, first_is_being_saved, let_the_first_go_on_once_waiting


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


async def test_messages_handed_over_while_a_batch_is_saved_are_saved_together_next(open_socket, room_name, batches):
    sizes, first_is_being_saved, let_the_first_go_on_once_waiting = batches
    first, *others = [await open_socket() for _ in range(5)]
    await first.send_json_to({"message": "first"})
    await first_is_being_saved()

    for number, socket in enumerate(others):
        await socket.send_json_to({"message": f"meanwhile {number}"})
    await let_the_first_go_on_once_waiting(4)

    numbers = {(frame := await first.receive_json_from())["message"]: frame["number"] for _ in range(5)}
    assert sizes == [1, 4]
    assert numbers == {"first": 1, "meanwhile 0": 2, "meanwhile 1": 3, "meanwhile 2": 4, "meanwhile 3": 5}


async def test_a_rooms_share_of_a_batch_reaches_each_socket_in_one_frame(open_socket, room_name, batches):
    sizes, first_is_being_saved, let_the_first_go_on_once_waiting = batches
    listener, first, *others = [await open_socket() for _ in range(5)]
    await first.send_json_to({"message": "first"})
    await first_is_being_saved()

    for number, socket in enumerate(others):
        await socket.send_json_to({"message": f"meanwhile {number}"})
    await let_the_first_go_on_once_waiting(3)

    frames = [json.loads((await listener.receive_output())["text"]) for _ in range(2)]
    assert [[message["message"] for message in frame["messages"]] for frame in frames] == [
        ["first"],
        ["meanwhile 0", "meanwhile 1", "meanwhile 2"],
    ]


async def test_a_batch_takes_the_same_statements_whatever_its_size(open_socket, room_name, batches, queries):
    sizes, first_is_being_saved, let_the_first_go_on_once_waiting = batches
    sockets = [await open_socket() for _ in range(4)]
    for socket in sockets:
        # Refused without the database, once the socket has read its history: nothing but the saves query from now on.
        await socket.send_json_to({"message": ""})
        assert "error" in await socket.receive_json_from()
    await sockets[0].send_json_to({"message": "alone"})
    await first_is_being_saved()
    for socket in sockets[1:]:
        await socket.send_json_to({"message": "together"})
    queries.clear()

    await let_the_first_go_on_once_waiting(3)
    [await sockets[0].receive_json_from() for _ in range(4)]

    one_batch = ["SELECT", "INSERT", "UPDATE"]
    if connection.vendor == "sqlite":  # Django sends SQLite's BEGIN; psycopg sends PostgreSQL's itself, unseen here
        one_batch.insert(0, "BEGIN")
    assert sizes == [1, 3]
    assert [sql.split()[0] for sql in queries] == one_batch + one_batch, queries


async def test_each_rooms_share_of_a_batch_gets_the_rooms_next_numbers(open_socket, room_name, batches):
    sizes, first_is_being_saved, let_the_first_go_on_once_waiting = batches
    here = [await open_socket() for _ in range(2)]
    next_door = [await open_socket(f"{room_name}-next-door") for _ in range(2)]
    await here[0].send_json_to({"message": "here 1"})
    await first_is_being_saved()

    for number, socket in enumerate([next_door[0], here[1], next_door[1]]):
        await socket.send_json_to({"message": f"meanwhile {number}"})
    await let_the_first_go_on_once_waiting(3)

    assert [(await here[0].receive_json_from())["number"] for _ in range(2)] == [1, 2]
    assert [(await next_door[0].receive_json_from())["number"] for _ in range(2)] == [1, 2]
    assert sizes == [1, 3]


async def test_a_senders_messages_are_numbered_in_the_order_it_sent_them(open_socket, room_name):
    sender = await open_socket()
    others = [await open_socket() for _ in range(3)]

    for number in range(10):
        await sender.send_json_to({"message": f"sender {number}"})
        await others[number % 3].send_json_to({"message": f"other {number}"})
    frames = [await sender.receive_json_from() for _ in range(20)]

    mine = sorted((frame["number"], frame["message"]) for frame in frames if frame["message"].startswith("sender"))
    assert [message for _, message in mine] == [f"sender {number}" for number in range(10)]
    assert sorted(frame["number"] for frame in frames) == list(range(1, 21))
