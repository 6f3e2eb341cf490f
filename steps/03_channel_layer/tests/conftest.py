import os
from pathlib import Path

import pytest
import redis
from django.conf import settings

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
