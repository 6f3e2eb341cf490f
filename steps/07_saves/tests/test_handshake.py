import pytest
from django.test import Client

from sockets import handshake

pytestmark = pytest.mark.django_db(transaction=True)


async def test_same_origin_handshake_is_accepted():
    socket, accepted = await handshake("/ws/chat/lobby/")
    await socket.disconnect()

    assert accepted


async def test_handshake_without_a_login_is_refused():
    socket, accepted = await handshake("/ws/chat/lobby/", client=Client())

    assert not accepted


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1.evil.example:8000"])
async def test_foreign_origin_is_refused(origin):
    socket, accepted = await handshake("/ws/chat/lobby/", origin=origin)

    assert not accepted


async def test_missing_origin_is_refused():
    socket, accepted = await handshake("/ws/chat/lobby/", origin=None)

    assert not accepted


@pytest.mark.parametrize("room_name", ["café", "two%20words", "a" * 91, "..", ""])
async def test_room_names_outside_the_rule_are_refused_at_the_handshake(room_name):
    socket, accepted = await handshake(f"/ws/chat/{room_name}/")

    assert not accepted


async def test_unknown_websocket_path_is_refused():
    socket, accepted = await handshake("/ws/elsewhere/")

    assert not accepted
