import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys

import psycopg
import pytest
from django.db import connection as django_connection
from room_client import RoomClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from browser import free_port
from chat.models import Message
from servers import STEP, child_process, eventually, session_cookies, wait_until_listening
from sockets import received

pytestmark = pytest.mark.database

# uvicorn closes every socket with the standard code as it stops.
SERVICE_RESTART = 1012
# Once it has shut down, uvicorn ends itself with the signal it was stopped by.
STOPPED_BY_SIGTERM = -signal.SIGTERM
SENDERS_PER_SERVER = 4
MESSAGES_EACH = 20
SENDING_RATE = 8  # messages a second from each sender, under the send limit


async def send_three_and_see_them_read(socket):
    for number in range(3):
        await socket.send_json_to({"message": f"message {number}", "client_id": f"page-{number}"})
    # Refused at once, without the database: the answer shows the three before it were read.
    await socket.send_json_to({"message": "", "client_id": "empty"})
    assert (await socket.receive_json_from())["refused"] == "empty"


async def test_a_socket_that_closes_ends_only_once_the_messages_it_sent_are_saved(open_socket, held_saves):
    socket = await open_socket()
    await send_three_and_see_them_read(socket)

    await socket.send_input({"type": "websocket.disconnect", "code": 1001})

    ended, _ = await asyncio.wait([socket.future], timeout=0.5)
    assert not ended, "the consumer ended while its messages waited to be saved"
    held_saves.set()
    await asyncio.wait_for(socket.future, 5)
    assert await Message.objects.acount() == 3


@contextlib.contextmanager
def uvicorn_processes(count, tmp_path, site):
    """uvicorn processes serving this step as the deployment does, with the suite's Redis and the database of `site`.

    daphne is no use here: when it stops, it cancels no consumer if any socket connected in the last second or so
    (its kill_all_applications fails on the handshake's request), so nothing of theirs is saved. Yields (ws:// base
    URL, process, log) for each.
    """
    env = {**site.env, "PYTHONPATH": os.pathsep.join([str(STEP), site.env["PYTHONPATH"]])}
    with contextlib.ExitStack() as stack:
        started = []
        for _ in range(count):
            port = free_port()
            log = tmp_path / f"uvicorn-{port}.log"
            command = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
            command += ["--ws", "websockets-sansio", "--lifespan", "off", "mysite.asgi:application"]
            started.append((port, log, stack.enter_context(child_process(command, port, log, env, wait=False))))
        for port, log, process in started:
            wait_until_listening(port, process, log)
        yield [(f"ws://127.0.0.1:{port}", process, log) for port, log, process in started]


def saved_messages(database, room_name):
    """(number, client id) of every message the site saved in the room, by number."""
    query = """
        SELECT number, client_id FROM chat_message JOIN chat_room ON chat_room.id = chat_message.room_id
        WHERE chat_room.name = ? ORDER BY number
    """
    with contextlib.closing(connect_to(database)) as connection:
        placeholder = "%s" if is_postgresql() else "?"
        return [tuple(row) for row in connection.execute(query.replace("?", placeholder), [room_name])]


def is_postgresql():
    return django_connection.vendor == "postgresql"


def connect_to(database, **sqlite_options):
    """A connection of the test's own to the site's database, SQLite's file or PostgreSQL's database by name."""
    if not is_postgresql():
        return sqlite3.connect(database, **sqlite_options)
    return psycopg.connect(**{**django_connection.get_connection_params(), "dbname": database}, autocommit=True)


async def send_at_a_steady_rate(client, count):
    for number in range(count):
        await client.send(f"{client.name} says {number}")
        await asyncio.sleep(1 / SENDING_RATE)


async def test_a_server_stopped_under_load_saves_and_delivers_every_message_it_accepted(room_name, site, tmp_path):
    with uvicorn_processes(2, tmp_path, site) as [(stopping, process, _), (staying, _, _)]:
        # Each sender a user of its own, as the send limit counts the messages of all a user's sockets together.
        names = [f"{where}{number}" for where in "ab" for number in range(SENDERS_PER_SERVER)]
        cookies = session_cookies(site, *names)
        clients = [
            RoomClient(name, [stopping, staying] if name[0] == "a" else [staying], room_name, cookie, name)
            for name, cookie in zip(names, cookies, strict=True)
        ]
        readers = [asyncio.create_task(client.stay_connected()) for client in clients]
        try:
            await asyncio.wait_for(asyncio.gather(*(client.open.wait() for client in clients)), 10)
            sending = asyncio.gather(*(send_at_a_steady_rate(client, MESSAGES_EACH) for client in clients))
            await eventually(lambda: sum(client.answered for client in clients) >= len(clients) * MESSAGES_EACH / 4)

            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(sending, 20)
            await eventually(lambda: not any(client.unsaved for client in clients), seconds=20)
            total = len(clients) * MESSAGES_EACH
            for client in clients:
                await client.ask_for_what_is_missing()
            await eventually(lambda: all(client.last_number == total for client in clients), seconds=10)
        finally:
            for reader in readers:
                reader.cancel()
        assert process.wait(timeout=10) == STOPPED_BY_SIGTERM

    assert [client.close_codes for client in clients[:SENDERS_PER_SERVER]] == [[SERVICE_RESTART]] * SENDERS_PER_SERVER
    saved = saved_messages(site.database, room_name)
    assert [number for number, _ in saved] == list(range(1, total + 1))
    assert sorted(client_id for _, client_id in saved) == sorted(
        f"{c.name}-{n + 1}" for c in clients for n in range(MESSAGES_EACH)
    )


@contextlib.contextmanager
def write_locked(database):
    """Holds the lock a save needs, as a long transaction of another process would: SQLite's write lock, or on
    PostgreSQL the rooms' table, against SELECT ... FOR UPDATE (reading it stays free, as in SQLite)."""
    with contextlib.closing(connect_to(database, isolation_level=None)) as connection:
        connection.execute("BEGIN" if is_postgresql() else "BEGIN IMMEDIATE")
        if is_postgresql():
            connection.execute("LOCK TABLE chat_room IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")


async def test_a_server_stopped_while_the_database_is_locked_saves_what_it_accepted_once_it_is_free(
    room_name, site, site_cookie, tmp_path
):
    with uvicorn_processes(1, tmp_path, site) as [(server, process, log)]:
        origin = server.replace("ws://", "http://")
        url = f"{server}/ws/chat/{room_name}/"
        async with connect(url, origin=origin, additional_headers={"Cookie": site_cookie}) as socket:
            await socket.send(json.dumps({"message": "before the lock", "client_id": "lock-0"}))
            assert [message["client_id"] for message in await received(socket)] == ["lock-0"]
            with write_locked(site.database):
                for number in range(1, 6):
                    await socket.send(json.dumps({"message": f"while locked {number}", "client_id": f"lock-{number}"}))
                # Refused at once, with no trip to the database: the answer shows the five before it were read.
                await socket.send(json.dumps({"message": "", "client_id": "empty"}))
                assert json.loads(await asyncio.wait_for(socket.recv(), 5))["refused"] == "empty"

                process.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(socket.recv(), 5)
                await eventually(lambda: "Waiting for background tasks to complete" in log.read_text())
                assert process.poll() is None, "the server stopped without saving what it had accepted"
        assert process.wait(timeout=10) == STOPPED_BY_SIGTERM

    assert closed.value.rcvd.code == SERVICE_RESTART
    assert [client_id for _, client_id in saved_messages(site.database, room_name)] == [f"lock-{n}" for n in range(6)]
