from django.conf import settings
from websockets.asyncio.client import connect

from servers import daphne, eventually, room_subscriptions

PING_OPTIONS = ("--ping-interval", "1", "--ping-timeout", "1")


async def test_peer_that_stops_answering_pings_is_dropped_and_leaves_the_room(tmp_path, room_name, site, site_cookie):
    with daphne(tmp_path, settings.REDIS_URL, site, options=PING_OPTIONS) as server:
        origin = server.replace("ws://", "http://")
        headers = {"Cookie": site_cookie}
        async with connect(f"{server}/ws/chat/{room_name}/", origin=origin, additional_headers=headers) as peer:
            await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 1)

            peer.transport.pause_reading()

            await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 0, seconds=10)
