import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from servers import PrivateRedis, daphne, eventually, room_subscriptions


@pytest.fixture(scope="module")
def private_redis_and_daphne(tmp_path_factory):
    """A Redis of this module's own, which its tests restart, and a daphne using it: the tests share the two.

    Yields the Redis and the daphne's ws:// base URL.
    """
    folder = tmp_path_factory.mktemp("private_redis")
    with PrivateRedis(folder) as redis_server, daphne(folder, redis_server.url) as server:
        yield redis_server, server


def websocket(base_url, room_name):
    return connect(f"{base_url}/ws/chat/{room_name}/", origin=base_url.replace("ws://", "http://"), open_timeout=5)


async def test_new_sockets_chat_again_after_redis_restarts(room_name, private_redis_and_daphne):
    redis_server, server = private_redis_and_daphne
    async with websocket(server, room_name) as before:
        await before.send(json.dumps({"message": "before the restart"}))
        assert json.loads(await asyncio.wait_for(before.recv(), 5)) == {"message": "before the restart"}
        # Restarted while a socket is open, the layer's listener finds out at once and reconnects by itself. In a
        # process with no socket open, the next handshake and the listener would both reconnect, and
        # channels_redis then fails that handshake now and then (docs/03_channel_layer.md, "readuntil()").
        redis_server.stop()
        redis_server.start()
        await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 1)

    async with websocket(server, room_name) as alice, websocket(server, room_name) as bob:
        await alice.send(json.dumps({"message": "back again"}))

        assert json.loads(await asyncio.wait_for(bob.recv(), 5)) == {"message": "back again"}
        # The sender's copy too: daphne fails a send to a closing socket, and that consumer never leaves the room.
        assert json.loads(await asyncio.wait_for(alice.recv(), 5)) == {"message": "back again"}
    await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 0)


async def test_open_sockets_chat_again_once_redis_is_back(room_name, private_redis_and_daphne):
    redis_server, server = private_redis_and_daphne
    async with websocket(server, room_name) as alice, websocket(server, room_name) as bob:
        redis_server.stop()
        redis_server.start()
        await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 1)

        await alice.send(json.dumps({"message": "still here"}))

        assert json.loads(await asyncio.wait_for(bob.recv(), 5)) == {"message": "still here"}
        # The sender's copy too: daphne fails a send to a closing socket, and that consumer never leaves the room.
        assert json.loads(await asyncio.wait_for(alice.recv(), 5)) == {"message": "still here"}
    await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 0)
