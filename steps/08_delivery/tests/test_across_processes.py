import asyncio
import json

import pytest
from django.conf import settings
from websockets.asyncio.client import connect

from servers import daphnes, eventually, room_subscriptions
from sockets import received

IN_MEMORY_SETTINGS = """
from browser_test_settings import *  # noqa: F403

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
"""


def websocket(base_url, room_name, cookie, query=""):
    origin = base_url.replace("ws://", "http://")
    return connect(
        f"{base_url}/ws/chat/{room_name}/?{query}",
        origin=origin,
        additional_headers={"Cookie": cookie},
        open_timeout=5,
    )


async def numbers_of(socket, count):
    numbers = []
    while len(numbers) < count:
        numbers += [message["number"] for message in await received(socket)]
    return numbers


async def send_and_read_to_its_echo(socket, text):
    await socket.send(json.dumps({"message": text}))
    while text not in [message["message"] for message in await received(socket)]:
        pass


async def test_message_sent_to_one_process_reaches_a_socket_of_the_other(room_name, daphne_servers, site_cookie):
    first, second = daphne_servers
    async with websocket(first, room_name, site_cookie) as alice, websocket(second, room_name, site_cookie) as bob:
        await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 2)
        await alice.send(json.dumps({"message": "across processes"}))

        assert [message["message"] for message in await received(bob)] == ["across processes"]
        assert [message["message"] for message in await received(alice)] == ["across processes"]
    await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 0)


async def test_in_memory_layer_cannot_cross_processes(tmp_path, room_name, site, site_cookie):
    (tmp_path / "in_memory_settings.py").write_text(IN_MEMORY_SETTINGS)
    with daphnes(2, tmp_path, settings.REDIS_URL, site, "in_memory_settings") as (first, second):
        async with websocket(first, room_name, site_cookie) as alice, websocket(second, room_name, site_cookie) as bob:
            # A page's history comes before its echo, and holds the other's first message if saved before it was read.
            await send_and_read_to_its_echo(alice, "alice is here")
            await send_and_read_to_its_echo(bob, "bob is here")
            await alice.send(json.dumps({"message": "stays in one process"}))

            assert [message["message"] for message in await received(alice)] == ["stays in one process"]
            # Had alice's message gone through Redis, bob's process would have had it before bob's next one.
            await bob.send(json.dumps({"message": "bob again"}))
            assert [message["message"] for message in await received(bob)] == ["bob again"]


@pytest.mark.database
async def test_messages_saved_by_two_processes_at_once_are_numbered_without_gaps_and_caught_up_exactly(
    room_name, daphne_servers, site_cookie
):
    sent_by_each = 15
    first, second = daphne_servers
    async with websocket(first, room_name, site_cookie) as alice, websocket(second, room_name, site_cookie) as bob:
        await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 2)

        async def send_all(socket, name):
            for number in range(sent_by_each):
                await socket.send(json.dumps({"message": f"{name} {number}"}))

        await asyncio.gather(send_all(alice, "alice"), send_all(bob, "bob"))
        # Each socket gets every message once, from both processes. (Reading them all also lets the sockets close
        # at once: a client that leaves frames unread keeps the close waiting for its timeout.)
        every_number = list(range(1, 2 * sent_by_each + 1))
        assert sorted(await numbers_of(alice, 2 * sent_by_each)) == every_number
        assert sorted(await numbers_of(bob, 2 * sent_by_each)) == every_number

    async with websocket(second, room_name, site_cookie, query="after=7") as late:
        assert await numbers_of(late, 2 * sent_by_each - 7) == list(range(8, 2 * sent_by_each + 1))
