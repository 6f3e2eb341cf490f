import asyncio
import os
from pathlib import Path

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from sockets import handshake

pytest_plugins = ["browser", "servers"]


@pytest.fixture(autouse=True, scope="session")
def redis_is_running():
    """Every socket joins a group in Redis, so without Redis this suite cannot say anything."""
    if not hasattr(settings, "REDIS_URL"):
        pytest.fail("mysite/settings.py has no REDIS_URL: the channel layer reads Redis's address from it.")
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        step = Path(__file__).resolve().parents[1].name.split("_")[0]
        message = (
            f"Redis is not reachable at REDIS_URL={settings.REDIS_URL}. Run this suite with "
            f"`python workshop.py test {step}` from the repository root, which starts a Redis for it, "
            "or start redis-server yourself, or set REDIS_URL to a running one."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Django's default hasher takes a third of a second for every password on purpose; no test needs that."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def client(client, db, django_user_model):
    """Django's test client, logged in as alice: every page but the login page needs a user."""
    client.force_login(django_user_model.objects.create_user("alice"))
    return client


@pytest.fixture
async def open_socket(transactional_db, room_name):
    """Connects accepted sockets to a room (by default the test's own) and closes them all when the test ends.

    Each socket has a new session of its own: alice's, or that of the test client passed in.
    """
    sockets = []

    async def connect(room=None, client=None, query=""):
        room = room or room_name
        communicator, accepted = await handshake(f"/ws/chat/{room}/?{query}", client=client)
        assert accepted, f"the handshake to room {room!r} was refused"
        sockets.append(communicator)
        return communicator

    yield connect
    for communicator in sockets:
        await communicator.disconnect()
    # The test's own async queries run in a thread of asgiref's: give back the connection the pool lent it there, which
    # would keep PostgreSQL from dropping the test database at the end. (SQLite's, kept open, stays.)
    await sync_to_async(close_old_connections)()


@pytest.fixture
def held_saves(monkeypatch):
    """Saves that wait until the test lets them go on: the messages handed over meanwhile wait to be saved."""
    from chat import saver  # once Django is set up

    may_go_on = asyncio.Event()
    save_batch = saver.save_batch

    async def held_save_batch(batch):
        await asyncio.wait_for(may_go_on.wait(), 5)
        return await save_batch(batch)

    monkeypatch.setattr(saver, "save_batch", held_save_batch)
    return may_go_on
