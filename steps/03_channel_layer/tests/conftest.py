import os

import pytest
import redis
from django.conf import settings

from sockets import handshake

pytest_plugins = ["browser"]


@pytest.fixture(autouse=True, scope="session")
def redis_is_running():
    """Every socket joins a group in Redis, so without Redis this suite cannot say anything."""
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        message = (
            f"Redis is not reachable at REDIS_URL={settings.REDIS_URL}. Run this suite with "
            "`python workshop.py test 03` from the repository root, which starts a Redis for it, "
            "or start redis-server yourself, or set REDIS_URL to a running one."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
async def open_socket(room_name):
    """Connects accepted sockets to a room (by default the test's own) and closes them all when the test ends."""
    sockets = []

    async def connect(room=None):
        room = room or room_name
        communicator, accepted = await handshake(f"/ws/chat/{room}/")
        assert accepted, f"the handshake to room {room!r} was refused"
        sockets.append(communicator)
        return communicator

    yield connect
    for communicator in sockets:
        await communicator.disconnect()
