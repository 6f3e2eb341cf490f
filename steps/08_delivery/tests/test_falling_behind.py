import asyncio
import functools
import json
import logging
import time

from channels.layers import get_channel_layer
from django.conf import settings

from chat import consumers
from chat.close_codes import FELL_BEHIND
from chat.limits import MAX_DELAY_SECONDS
from servers import eventually, room_subscriptions
from sockets import ChatCommunicator, handshake


def frame(number, text):
    return {"id": number, "number": number, "author": "alice", "message": text, "created": "2026-01-01T00:00:00+00:00"}


def batch(number, text, read_at):
    as_frame = json.dumps({"messages": [frame(number, text)]})
    return {"type": "chat.messages", "first": number, "last": number, "frame": as_frame, "read_at": read_at}


async def test_socket_that_falls_behind_the_room_is_told_and_closed(open_socket, room_name, caplog):
    socket = await open_socket()
    read_long_ago = time.time() - MAX_DELAY_SECONDS - 1

    await get_channel_layer().group_send(f"chat_{room_name}", batch(1, "old", read_long_ago))

    error = json.loads((await socket.receive_output())["text"])["error"]
    assert error.startswith(f"This connection fell {MAX_DELAY_SECONDS + 1} seconds behind")
    assert await socket.receive_output() == {"type": "websocket.close", "code": FELL_BEHIND}
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert warning.getMessage().startswith(f"chat_{room_name}: closed a socket {MAX_DELAY_SECONDS + 1}.")


async def test_socket_keeping_up_gets_every_message(open_socket, room_name):
    socket = await open_socket()
    read_just_now = time.time() - MAX_DELAY_SECONDS + 1

    await get_channel_layer().group_send(f"chat_{room_name}", batch(1, "new", read_just_now))

    assert await socket.receive_json_from() == frame(1, "new")


class PageSocket(ChatCommunicator):
    """A socket whose frames go into a queue of the page's, `Page`: as with a server's send, a put may wait or fail."""

    Page = asyncio.Queue

    @property
    def output_queue(self):
        if self._output_queue is None:
            self._output_queue = self.Page()
        return self._output_queue


class PageThatStopsReading(PageSocket):
    """A page that reads nothing while it holds a frame: the consumer's next send waits, as it does under a server
    (uvicorn) whose buffer for the socket is full."""

    # staticmethod: from Python 3.14, a partial in a class body is a method, and would be given the socket too.
    Page = staticmethod(functools.partial(asyncio.Queue, maxsize=1))


async def test_a_page_that_reads_nothing_leaves_the_room_and_finds_why_once_it_reads(
    transactional_db, room_name, monkeypatch, caplog
):
    monkeypatch.setattr(consumers, "MAX_DELAY_SECONDS", 0.2)
    page, accepted = await handshake(f"/ws/chat/{room_name}/", communicator=PageThatStopsReading)
    assert accepted
    try:
        for number in (1, 2):  # the first frame is what the page holds; the second waits to be sent
            await get_channel_layer().group_send(f"chat_{room_name}", batch(number, "unread", time.time()))
        await eventually(lambda: "read nothing for 0.2 seconds" in caplog.text)

        assert await page.receive_json_from() == frame(1, "unread")
        assert await page.receive_json_from() == {"error": "This connection fell 0.2 seconds behind; reconnect."}
        assert await page.receive_output() == {"type": "websocket.close", "code": FELL_BEHIND}
        await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 0)
    finally:
        await page.disconnect()  # as open_socket does: the consumer ends, and an error it ended with is raised here


class PageThatGoes(asyncio.Queue):
    """What a page takes from its socket, until it has gone: then the server's send fails, as ASGI asks of a server
    (uvicorn raises its ClientDisconnected, an OSError). daphne's error is in test_flood_control.py."""

    gone = False

    async def put(self, item):
        if self.gone:
            raise ConnectionResetError("the page has gone")
        await super().put(item)


class SocketOfAPageThatGoes(PageSocket):
    Page = PageThatGoes


async def test_a_socket_whose_page_has_gone_when_it_sends_leaves_the_room(transactional_db, room_name):
    socket, accepted = await handshake(f"/ws/chat/{room_name}/", communicator=SocketOfAPageThatGoes)
    assert accepted
    socket.output_queue.gone = True

    await get_channel_layer().group_send(f"chat_{room_name}", batch(1, "too late", time.time()))

    await socket.wait(5)  # the consumer ends, as after a close
    await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 0)
