import asyncio
import json
import logging
import re

import pytest
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chat.close_codes import SENDING_TOO_FAST
from chat.limits import BURST, MESSAGES_PER_SECOND
from chat.models import Message
from servers import eventually, room_subscriptions


async def outputs_until_closed(communicator):
    outputs = []
    while not outputs or outputs[-1]["type"] != "websocket.close":
        outputs.append(await communicator.receive_output())
    return outputs


async def test_socket_sending_far_too_fast_is_told_why_and_closed(open_socket, caplog):
    flooder = await open_socket()

    for number in range(BURST * 2):
        await flooder.send_json_to({"message": f"flood {number}"})

    *frames, close = await outputs_until_closed(flooder)
    assert close == {"type": "websocket.close", "code": SENDING_TOO_FAST}
    assert frames[-1]["text"] == f'{{"error": "Too many messages: at most {MESSAGES_PER_SECOND} a second."}}'
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    accepted = int(re.search(r"after (\d+) messages", warning.getMessage())[1])
    assert BURST <= accepted < BURST * 2
    # Each message is saved before the next frame is read, so the flood stops at the database too.
    assert await Message.objects.acount() == accepted


async def test_the_rest_of_the_room_keeps_chatting_after_a_flooder_is_closed(open_socket):
    flooder = await open_socket()
    neighbour = await open_socket()

    for number in range(BURST * 2):
        await flooder.send_json_to({"message": f"flood {number}"})
    await outputs_until_closed(flooder)
    await neighbour.send_json_to({"message": "still here"})

    received = []
    while not received or received[-1] != "still here":
        received.append((await neighbour.receive_json_from())["message"])
    flood = received[:-1]
    assert BURST <= len(flood) < BURST * 2
    assert flood == [f"flood {number}" for number in range(len(flood))]


async def test_through_daphne_the_flooder_gets_the_consumers_close_code(room_name, daphne_servers, site_cookie):
    server = daphne_servers[0]
    origin = server.replace("ws://", "http://")
    headers = {"Cookie": site_cookie}
    async with connect(f"{server}/ws/chat/{room_name}/", origin=origin, additional_headers=headers) as flooder:
        for number in range(BURST * 2):
            await flooder.send(json.dumps({"message": f"flood {number}"}))

        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(flooder.recv(), 5)
        assert closed.value.rcvd.code == SENDING_TOO_FAST
        await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 0)
