import asyncio

import pytest

from chat import saver
from chat.consumers import RETRY_AFTER_SECONDS, SERVER_BUSY
from chat.models import Message
from sockets import logged_in

pytestmark = pytest.mark.database


async def test_a_message_sent_again_with_its_id_is_saved_once_and_the_sender_gets_the_saved_frame(
    open_socket, room_name
):
    first_try = await open_socket()
    listener = await open_socket()
    await first_try.send_json_to({"message": "hello", "client_id": "page-1"})
    saved = await first_try.receive_json_from()
    assert await listener.receive_json_from() == saved

    # As a page does after a reconnect, when the answer to its message was lost on the way.
    second_try = await open_socket()
    await second_try.send_json_to({"message": "hello", "client_id": "page-1"})

    assert await second_try.receive_json_from() == saved
    assert await listener.receive_nothing()
    assert await Message.objects.acount() == 1


async def test_the_same_id_from_another_author_is_another_message(open_socket, room_name):
    alice = await open_socket()
    bob = await open_socket(client=await asyncio.to_thread(logged_in, "bob"))

    await alice.send_json_to({"message": "from alice", "client_id": "page-1"})
    assert (await bob.receive_json_from())["message"] == "from alice"
    await bob.send_json_to({"message": "from bob", "client_id": "page-1"})

    assert (await bob.receive_json_from())["number"] == 2
    assert await Message.objects.acount() == 2


async def test_a_refused_message_is_named_by_its_id(open_socket):
    socket = await open_socket()

    await socket.send_json_to({"message": "  ", "client_id": "page-1"})

    reply = await socket.receive_json_from()
    assert reply["refused"] == "page-1" and reply["error"]


async def test_an_id_that_is_not_a_short_word_is_ignored(open_socket):
    socket = await open_socket()

    await socket.send_json_to({"message": "hi", "client_id": "no spaces, no symbols, at most 40 characters"})

    assert (await socket.receive_json_from())["client_id"] is None


async def test_a_socket_with_too_many_messages_waiting_to_be_saved_is_told_which_one_is_not_saved(
    open_socket, held_saves, monkeypatch
):
    monkeypatch.setattr(saver, "MAX_UNSAVED_PER_SOCKET", 3)
    socket = await open_socket()

    for number in range(4):
        await socket.send_json_to({"message": f"message {number}", "client_id": f"page-{number}"})

    assert await socket.receive_json_from() == {
        "error": SERVER_BUSY,
        "refused": "page-3",
        "retry_after": RETRY_AFTER_SECONDS,
    }
    held_saves.set()
    assert [(await socket.receive_json_from())["client_id"] for _ in range(3)] == ["page-0", "page-1", "page-2"]
    assert await socket.receive_nothing()
