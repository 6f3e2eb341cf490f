import asyncio
import json

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from mysite.asgi import application

SAME_ORIGIN = "http://127.0.0.1:8000"


class ChatCommunicator(WebsocketCommunicator):
    """Hands a test the messages of a frame one at a time: saved messages come in batches, {"messages": [...]}.

    Any other frame, an error say, comes as it is; receive_output still gives the frames themselves.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.messages = []

    async def receive_json_from(self, timeout=1):
        if not self.messages:
            frame = await super().receive_json_from(timeout)
            if "messages" not in frame:
                return frame
            self.messages = frame["messages"]
        return self.messages.pop(0)

    async def receive_nothing(self, timeout=0.1, interval=0.01):
        return not self.messages and await super().receive_nothing(timeout, interval)


async def received(socket, seconds=5):
    """The messages of the next frame a websockets client gets."""
    frame = json.loads(await asyncio.wait_for(socket.recv(), seconds))
    assert "messages" in frame, f"a frame that holds no messages: {frame}"
    return frame["messages"]


def logged_in(username="alice"):
    """A test client with a session of its own, logged in as `username` (created if need be)."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    client = Client()
    client.force_login(user)
    return client


async def handshake(path, origin=SAME_ORIGIN, client=None, communicator=ChatCommunicator):
    """Open a WebSocket through the whole ASGI stack; returns the communicator and whether it was accepted.

    The socket sends the cookies of `client`, by default a new session of alice's; `communicator` is its class.
    A refused socket is disconnected at once, so that no consumer is left running after the test.
    """
    client = client or await sync_to_async(logged_in)()
    cookies = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    headers = [(b"cookie", cookies.encode())]
    headers += [(b"origin", origin.encode())] if origin else []
    socket = communicator(application, path, headers=headers)
    accepted, _ = await socket.connect()
    if not accepted:
        await socket.disconnect()
    return socket, accepted
