import asyncio
import gc
import json
import logging
import time

import pytest
from asgiref.sync import sync_to_async
from autobahn.exception import Disconnected
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chat.close_codes import SENDING_TOO_FAST, TOO_MANY_SOCKETS
from chat.limits import BURST, MAX_SOCKETS_PER_USER, MESSAGES_PER_SECOND, SendRate
from chat.models import Message
from chat.saver import Saver
from servers import eventually, room_subscriptions
from sockets import handshake, logged_in


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
    error = json.loads(frames[-1]["text"])["error"]
    assert error == f"Too many messages: at most {MESSAGES_PER_SECOND} a second from all your pages."
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert warning.getMessage().endswith(": closed a socket of a user sending too fast")
    # The messages it sent before the limit are saved after the close: the test ends once they are, not during a save.
    await eventually(lambda: not Saver.of_this_process().unsaved)
    assert BURST <= await Message.objects.acount() < BURST * 2


async def test_the_rest_of_the_room_keeps_chatting_after_a_flooder_is_closed(open_socket):
    flooder = await open_socket()
    neighbour = await open_socket(client=await sync_to_async(logged_in)("bob"))

    for number in range(BURST * 2):
        await flooder.send_json_to({"message": f"flood {number}"})
    await outputs_until_closed(flooder)
    await neighbour.send_json_to({"message": "still here"})

    # The flooder's accepted messages are saved and sent in order; the neighbour's may come before the last of them.
    received = []
    while "still here" not in received or not await neighbour.receive_nothing(timeout=0.5):
        received.append((await neighbour.receive_json_from())["message"])
    flood = [message for message in received if message != "still here"]
    assert BURST <= len(flood) < BURST * 2
    assert flood == sorted(flood, key=lambda message: int(message.split()[1]))


async def test_a_users_sockets_share_one_send_rate(open_socket):
    first_page = await open_socket()
    second_page = await open_socket()  # alice's too, in a session of its own

    for number in range(BURST):
        await first_page.send_json_to({"message": f"first {number}"})
    for number in range(BURST):
        assert (await first_page.receive_json_from())["message"] == f"first {number}"
    for number in range(BURST):
        await second_page.send_json_to({"message": f"second {number}"})

    *frames, close = await outputs_until_closed(second_page)
    assert close == {"type": "websocket.close", "code": SENDING_TOO_FAST}
    assert "from all your pages" in json.loads(frames[-1]["text"])["error"]


async def test_a_user_opens_a_limited_number_of_sockets_and_is_told_so(open_socket):
    pages = [await open_socket() for _ in range(MAX_SOCKETS_PER_USER)]

    one_too_many = await open_socket()  # accepted, so that the page can read why it is closed

    error, close = await outputs_until_closed(one_too_many)
    assert json.loads(error["text"]) == {"error": f"Too many open pages: at most {MAX_SOCKETS_PER_USER} each."}
    assert close == {"type": "websocket.close", "code": TOO_MANY_SOCKETS}
    await open_socket(client=await sync_to_async(logged_in)("bob"))
    await pages[0].disconnect()
    await open_socket()


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


async def test_a_user_whose_only_socket_was_closed_comes_back_with_a_full_bucket(open_socket):
    # With the garbage collector off, a consumer held in a reference cycle would keep its user's bucket after it ended.
    gc.disable()
    try:
        flooder = await open_socket()
        for number in range(BURST * 2):
            await flooder.send_json_to({"message": f"flood {number}"})
        await outputs_until_closed(flooder)
        alice = await get_user_model().objects.aget(username="alice")
        # Once the messages it sent before the close are saved and sent, nothing holds the socket, nor its bucket.
        await eventually(lambda: alice.pk not in SendRate.of_user)

        await open_socket()

        assert SendRate.of_user[alice.pk].tokens == BURST
    finally:
        gc.enable()


class SocketOfAClosingPage(WebsocketCommunicator):
    """A socket whose page has sent its close: until the connection ends, daphne's send raises autobahn's Disconnected
    into the consumer, and Channels runs no `disconnect` for a consumer that ends by an error."""

    class Page(asyncio.Queue):
        closing = False

        async def put(self, item):
            if self.closing:
                raise Disconnected("Attempt to send on a closed protocol")
            await super().put(item)

    @property
    def output_queue(self):
        if self._output_queue is None:
            self._output_queue = self.Page()
        return self._output_queue


async def end_by_a_failed_send(room_name):
    socket, accepted = await handshake(f"/ws/chat/{room_name}/", communicator=SocketOfAClosingPage)
    assert accepted
    socket.output_queue.closing = True
    event = {"type": "chat.messages", "first": 1, "last": 1, "frame": '{"messages": []}', "read_at": time.time()}
    await get_channel_layer().group_send(f"chat_{room_name}", event)
    await socket.wait(5)  # the consumer ends quietly, as after a close


async def test_a_socket_that_daphne_could_not_send_to_leaves_its_room_and_its_users_count(open_socket, room_name):
    for _ in range(MAX_SOCKETS_PER_USER - 1):
        await open_socket(f"{room_name}-next-door")
    await end_by_a_failed_send(room_name)

    the_tenth = await open_socket(f"{room_name}-next-door")

    assert await the_tenth.receive_nothing(), "refused: the socket that ended still counts as one of alice's pages"
    await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 0)
