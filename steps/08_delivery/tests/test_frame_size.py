import asyncio
import json

import pytest
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from servers import eventually, room_subscriptions
from sockets import received

DAPHNE_MAX_MESSAGE_BYTES = 1024 * 1024


def websocket(base_url, room_name, cookie):
    origin = base_url.replace("ws://", "http://")
    url = f"{base_url}/ws/chat/{room_name}/"
    return connect(url, origin=origin, additional_headers={"Cookie": cookie}, open_timeout=5, max_size=None)


async def test_frame_over_daphnes_cap_closes_only_the_socket_that_sent_it(room_name, daphne_servers, site_cookie):
    # Not the process the flood test sends to: for a second after a late delivery, a process takes no message.
    server = daphne_servers[1]
    async with websocket(server, room_name, site_cookie) as sender:
        async with websocket(server, room_name, site_cookie) as listener:
            async with websocket(server, room_name, site_cookie) as oversized:
                await oversized.send("x" * (DAPHNE_MAX_MESSAGE_BYTES + 1))
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(oversized.recv(), 5)

            await sender.send(json.dumps({"message": "still here"}))

            assert [message["message"] for message in await received(sender)] == ["still here"]
            assert [message["message"] for message in await received(listener)] == ["still here"]
    await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 0)
