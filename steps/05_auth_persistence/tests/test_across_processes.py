import asyncio
import json

from django.conf import settings
from websockets.asyncio.client import connect

from servers import daphnes, eventually, room_subscriptions

IN_MEMORY_SETTINGS = """
from browser_test_settings import *  # noqa: F403

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
"""


def websocket(base_url, room_name, cookie):
    origin = base_url.replace("ws://", "http://")
    return connect(
        f"{base_url}/ws/chat/{room_name}/", origin=origin, additional_headers={"Cookie": cookie}, open_timeout=5
    )


async def send_and_read_to_its_echo(socket, text):
    await socket.send(json.dumps({"message": text}))
    while json.loads(await asyncio.wait_for(socket.recv(), 5))["message"] != text:
        pass


async def test_message_sent_to_one_process_reaches_a_socket_of_the_other(room_name, daphne_servers, site_cookie):
    first, second = daphne_servers
    async with websocket(first, room_name, site_cookie) as alice, websocket(second, room_name, site_cookie) as bob:
        await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 2)
        await alice.send(json.dumps({"message": "across processes"}))

        assert json.loads(await asyncio.wait_for(bob.recv(), 5))["message"] == "across processes"
        assert json.loads(await asyncio.wait_for(alice.recv(), 5))["message"] == "across processes"
    await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 0)


async def test_in_memory_layer_cannot_cross_processes(tmp_path, room_name, site, site_cookie):
    (tmp_path / "in_memory_settings.py").write_text(IN_MEMORY_SETTINGS)
    with daphnes(2, tmp_path, settings.REDIS_URL, site, "in_memory_settings") as (first, second):
        async with websocket(first, room_name, site_cookie) as alice, websocket(second, room_name, site_cookie) as bob:
            # A page's history comes before its echo, and holds the other's first message if saved before it was read.
            await send_and_read_to_its_echo(alice, "alice is here")
            await send_and_read_to_its_echo(bob, "bob is here")
            await alice.send(json.dumps({"message": "stays in one process"}))

            assert json.loads(await asyncio.wait_for(alice.recv(), 5))["message"] == "stays in one process"
            # Had alice's message gone through Redis, bob's process would have had it before bob's next one.
            await bob.send(json.dumps({"message": "bob again"}))
            assert json.loads(await asyncio.wait_for(bob.recv(), 5))["message"] == "bob again"
