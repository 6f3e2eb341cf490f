import json
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import HttpCommunicator
from django.contrib.auth import get_user_model
from websockets.asyncio.client import connect

from browser import free_port
from chat.close_codes import REDIS_UNREACHABLE
from chat.limits import SendRate
from mysite.asgi import application
from servers import PrivateRedis, daphne, eventually, room_subscriptions
from sockets import handshake, logged_in, received

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-redis-password"


def use_redis_at(settings, url):
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [{"address": url}]}}}
    settings.REDIS_URL = url


@pytest.fixture
def redis_unreachable(settings):
    """Point the channel layer at a port where nothing listens, with a password as a real REDIS_URL may have."""
    port = free_port()
    use_redis_at(settings, f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    return port


def groups_of_this_process():
    """The groups the channel layer of this process (and event loop) has members for."""
    return get_channel_layer().groups


async def test_handshake_is_refused_with_one_clear_log_line_when_redis_is_unreachable(redis_unreachable, caplog):
    client = await sync_to_async(logged_in)()
    caplog.clear()  # logging in could not tell the sockets of the session it replaced, had there been any
    with caplog.at_level(logging.WARNING):
        socket, accepted = await handshake("/ws/chat/lobby/", client=client)

    assert not accepted
    [record] = caplog.records
    assert f"127.0.0.1:{redis_unreachable}" in record.getMessage()
    assert PASSWORD not in record.getMessage()
    assert record.exc_info is None
    assert groups_of_this_process() == {}


async def test_pages_are_still_served_when_redis_is_unreachable(redis_unreachable):
    communicator = HttpCommunicator(application, "GET", "/accounts/login/", headers=[(b"host", b"testserver")])

    response = await communicator.get_response()

    assert response["status"] == 200


async def test_open_socket_is_closed_and_leaves_its_groups_when_redis_goes_away(
    settings, tmp_path, open_socket, caplog
):
    with PrivateRedis(tmp_path) as redis_server:
        use_redis_at(settings, redis_server.url)
        socket = await open_socket()
        assert len(groups_of_this_process()) == 3, "the socket joins its room's, its session's and its user's groups"

        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="chat"):
            await socket.send_json_to({"message": "anyone?"})
            closed = await socket.receive_output(timeout=10)
            await socket.disconnect()  # as the browser answers the close

    assert closed == {"type": "websocket.close", "code": REDIS_UNREACHABLE}
    # One line, or two when the socket's own channel fails as well: never a traceback.
    records = [record for record in caplog.records if record.name.startswith("chat.")]
    assert 1 <= len(records) <= 2, [record.getMessage() for record in records]
    assert all("Redis is not reachable" in record.getMessage() and not record.exc_info for record in records)
    assert groups_of_this_process() == {}


async def test_a_socket_closed_for_want_of_redis_no_longer_counts_against_its_user(settings, tmp_path, open_socket):
    with PrivateRedis(tmp_path) as redis_server:
        use_redis_at(settings, redis_server.url)
        socket = await open_socket()
        alice = await get_user_model().objects.aget(username="alice")
        bucket = SendRate.of_user[alice.pk]

        redis_server.stop()
        await socket.send_json_to({"message": "anyone?"})
        assert await socket.receive_output(timeout=10) == {"type": "websocket.close", "code": REDIS_UNREACHABLE}
        await socket.disconnect()  # as the browser answers the close

    assert len(bucket.sockets) == 0, "the closed socket still counts as one of alice's open pages"


@pytest.fixture(scope="module")
def private_redis_and_daphne(tmp_path_factory, site):
    """A Redis of this module's own, which its tests restart, and a daphne using it: the tests share the two.

    Yields the Redis and the daphne's ws:// base URL.
    """
    folder = tmp_path_factory.mktemp("private_redis")
    with PrivateRedis(folder) as redis_server, daphne(folder, redis_server.url, site) as server:
        yield redis_server, server


def websocket(base_url, room_name, cookie):
    origin = base_url.replace("ws://", "http://")
    return connect(
        f"{base_url}/ws/chat/{room_name}/", origin=origin, additional_headers={"Cookie": cookie}, open_timeout=5
    )


async def test_new_sockets_chat_again_after_redis_restarts(room_name, private_redis_and_daphne, site_cookie):
    redis_server, server = private_redis_and_daphne
    async with websocket(server, room_name, site_cookie) as before:
        await before.send(json.dumps({"message": "before the restart"}))
        assert [message["message"] for message in await received(before)] == ["before the restart"]
        # Restarted while a socket is open, the layer's listener finds out at once and reconnects by itself. In a
        # process with no socket open, the next handshake and the listener would both reconnect, and
        # channels_redis then fails that handshake now and then (docs/03_channel_layer.md, "readuntil()").
        redis_server.stop()
        redis_server.start()
        await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 1)

    async with websocket(server, room_name, site_cookie) as alice, websocket(server, room_name, site_cookie) as bob:
        # Both sockets join the room first, with the history so far: the message before the restart.
        assert [message["message"] for message in await received(alice)] == ["before the restart"]
        assert [message["message"] for message in await received(bob)] == ["before the restart"]
        await alice.send(json.dumps({"message": "back again"}))

        assert [message["message"] for message in await received(bob)] == ["back again"]
    await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 0)


async def test_open_sockets_chat_again_once_redis_is_back(room_name, private_redis_and_daphne, site_cookie):
    redis_server, server = private_redis_and_daphne
    async with websocket(server, room_name, site_cookie) as alice, websocket(server, room_name, site_cookie) as bob:
        redis_server.stop()
        redis_server.start()
        await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 1)

        await alice.send(json.dumps({"message": "still here"}))

        assert [message["message"] for message in await received(bob)] == ["still here"]
    await eventually(lambda: room_subscriptions(redis_server.url, room_name) == 0)
