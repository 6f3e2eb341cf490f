import pytest

from sockets import handshake

pytest_plugins = ["browser"]


@pytest.fixture
async def open_socket():
    """Connects accepted sockets to a room and closes them all when the test ends."""
    sockets = []

    async def connect(room="lobby"):
        communicator, accepted = await handshake(f"/ws/chat/{room}/")
        assert accepted, f"the handshake to room {room!r} was refused"
        sockets.append(communicator)
        return communicator

    yield connect
    for communicator in sockets:
        await communicator.disconnect()
