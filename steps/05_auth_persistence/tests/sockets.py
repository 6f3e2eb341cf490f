from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from mysite.asgi import application

SAME_ORIGIN = "http://127.0.0.1:8000"


def logged_in(username="alice"):
    """A test client with a session of its own, logged in as `username` (created if need be)."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    client = Client()
    client.force_login(user)
    return client


async def handshake(path, origin=SAME_ORIGIN, client=None, communicator=WebsocketCommunicator):
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
