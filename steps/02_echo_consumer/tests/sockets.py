from channels.testing import WebsocketCommunicator

from mysite.asgi import application

SAME_ORIGIN = "http://127.0.0.1:8000"


async def handshake(path, origin=SAME_ORIGIN):
    """Open a WebSocket through the whole ASGI stack; returns the communicator and whether it was accepted.

    A refused socket is disconnected at once, so that no consumer is left running after the test.
    """
    headers = [(b"origin", origin.encode())] if origin else []
    communicator = WebsocketCommunicator(application, path, headers=headers)
    accepted, _ = await communicator.connect()
    if not accepted:
        await communicator.disconnect()
    return communicator, accepted
