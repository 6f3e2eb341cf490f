import asyncio
import json
import time

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from servers import PrivateRedis, daphne, eventually, room_subscriptions, subscribed_channels


def websocket(base_url, room_name):
    return connect(f"{base_url}/ws/chat/{room_name}/", origin=base_url.replace("ws://", "http://"), open_timeout=5)


async def until_a_handshake_is_accepted(*websocket_arguments, seconds=5):
    """Right after Redis restarts, channels_redis's pub/sub layer fails a handshake with HTTP 500 now and then: its
    reader and the handshake's subscription may both reconnect, on one connection, at once. A page reconnects then,
    and so does this, for at most `seconds`; any other answer fails the test.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            async with websocket(*websocket_arguments):
                return
        except InvalidStatus as refused:
            assert refused.response.status_code == 500 and time.monotonic() < deadline, refused
        await asyncio.sleep(0.05)


async def test_new_sockets_chat_again_after_redis_restarts(tmp_path, room_name):
    with PrivateRedis(tmp_path) as redis_server, daphne(tmp_path, redis_server.url) as server:
        async with websocket(server, room_name) as before:
            await before.send(json.dumps({"message": "before the restart"}))
            assert json.loads(await asyncio.wait_for(before.recv(), 5)) == {"message": "before the restart"}

        # Restart Redis once the socket has left all it joined: while the layer still listens, the race that
        # until_a_handshake_is_accepted() describes comes far more often.
        await eventually(lambda: subscribed_channels(redis_server.url) == [])
        redis_server.stop()
        redis_server.start()
        await until_a_handshake_is_accepted(server, room_name)

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
