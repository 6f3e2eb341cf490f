import asyncio
import json
import logging

import pytest
from channels.testing import HttpCommunicator
from websockets.asyncio.client import connect

from browser import free_port
from mysite.asgi import application
from servers import PrivateRedis, daphne, eventually, room_subscriptions
from sockets import handshake


@pytest.fixture
def redis_unreachable(settings):
    """Point the channel layer at a port where nothing listens."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [{"address": url}]}}}
    settings.REDIS_URL = url
    return url


async def test_handshake_is_refused_with_one_clear_log_line_when_redis_is_unreachable(redis_unreachable, caplog):
    with caplog.at_level(logging.WARNING):
        socket, accepted = await handshake("/ws/chat/lobby/")

    assert not accepted
    [record] = caplog.records
    assert f"REDIS_URL={redis_unreachable}" in record.getMessage()
    assert record.exc_info is None


async def test_pages_are_still_served_when_redis_is_unreachable(redis_unreachable):
    communicator = HttpCommunicator(application, "GET", "/chat/lobby/", headers=[(b"host", b"127.0.0.1")])

    response = await communicator.get_response()

    assert response["status"] == 200


def websocket(base_url, room_name):
    return connect(f"{base_url}/ws/chat/{room_name}/", origin=base_url.replace("ws://", "http://"), open_timeout=5)


async def test_new_sockets_chat_again_after_redis_restarts(tmp_path, room_name):
    with PrivateRedis(tmp_path) as redis_server, daphne(tmp_path, redis_server.url) as server:
        async with websocket(server, room_name) as before:
            await before.send(json.dumps({"message": "before the restart"}))
            assert json.loads(await asyncio.wait_for(before.recv(), 5)) == {"message": "before the restart"}

        redis_server.stop()
        redis_server.start()

        async with websocket(server, room_name) as alice, websocket(server, room_name) as bob:
            await alice.send(json.dumps({"message": "back again"}))

            assert json.loads(await asyncio.wait_for(bob.recv(), 5)) == {"message": "back again"}
        await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 0)


async def test_open_sockets_chat_again_once_redis_is_back(tmp_path, room_name):
    with PrivateRedis(tmp_path) as redis_server, daphne(tmp_path, redis_server.url) as server:
        async with websocket(server, room_name) as alice, websocket(server, room_name) as bob:
            redis_server.stop()
            redis_server.start()
            await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 1)

            await alice.send(json.dumps({"message": "still here"}))

            assert json.loads(await asyncio.wait_for(bob.recv(), 5)) == {"message": "still here"}
        await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 0)
