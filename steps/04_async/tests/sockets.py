from channels.testing import WebsocketCommunicator

from mysite.asgi import application

SAME_ORIGIN = "http://127.0.0.1:8000"


async def handshake(path, origin=SAME_ORIGIN):
    """Open a WebSocket through the whole ASGI stack; returns the communicator and whether it was accepted."""
    headers = [(b"origin", origin.encode())] if origin else []
    communicator = WebsocketCommunicator(application, path, headers=headers)
    accepted, _ = await communicator.connect()
    return communicator, accepted
