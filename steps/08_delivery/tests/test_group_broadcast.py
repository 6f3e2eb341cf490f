import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from servers import eventually, room_subscriptions
from sockets import logged_in

# Anyone who can reach Redis can publish to a room's group, so the consumers cannot count on an event's shape.
GOOD_EVENT = {"type": "chat.messages", "first": 1, "last": 1, "frame": '{"messages": []}', "read_at": 1.0}
MALFORMED_EVENTS = {
    "no frame": {**GOOD_EVENT, "frame": None},
    "a frame that is no text": {**GOOD_EVENT, "frame": {"messages": []}},
    "a number that is text": {**GOOD_EVENT, "last": "1"},
    "no first number": {key: value for key, value in GOOD_EVENT.items() if key != "first"},
    "no time it was read": {key: value for key, value in GOOD_EVENT.items() if key != "read_at"},
}


def subscribed(room_name, processes):
    return lambda: room_subscriptions(settings.REDIS_URL, room_name) == processes


async def test_message_reaches_every_socket_in_the_room_exactly_once(open_socket, room_name):
    sockets = [await open_socket(room_name) for _ in range(3)]

    await sockets[1].send_json_to({"message": "hello, room"})

    for socket in sockets:
        assert (await socket.receive_json_from())["message"] == "hello, room"
        assert await socket.receive_nothing()


async def test_message_does_not_leak_to_other_rooms(open_socket, room_name):
    sender = await open_socket(room_name)
    elsewhere = await open_socket(f"{room_name}-next-door")

    await sender.send_json_to({"message": "only here"})

    assert (await sender.receive_json_from())["message"] == "only here"
    assert await elsewhere.receive_nothing()


async def test_room_is_left_in_redis_when_its_last_socket_leaves(open_socket, room_name):
    stays = await open_socket(room_name)
    leaves = await open_socket(room_name)
    await eventually(subscribed(room_name, processes=1))

    await leaves.disconnect()
    await stays.send_json_to({"message": "after you left"})

    assert (await stays.receive_json_from())["message"] == "after you left"
    await stays.disconnect()
    await eventually(subscribed(room_name, processes=0))


async def test_error_frames_go_to_the_sender_only(open_socket, room_name):
    sender = await open_socket(room_name)
    neighbour = await open_socket(room_name)

    await sender.send_to(text_data="not json")

    assert "error" in await sender.receive_json_from()
    assert await neighbour.receive_nothing()


async def test_two_users_see_each_others_messages_with_their_names(open_socket, room_name):
    alice = await open_socket(room_name)
    bob = await open_socket(room_name, client=await sync_to_async(logged_in)("bob"))

    await alice.send_json_to({"message": "hi bob"})
    assert (await alice.receive_json_from())["message"] == "hi bob"
    await bob.send_json_to({"message": "hi alice"})

    conversation = [("alice", "hi bob"), ("bob", "hi alice")]
    for socket in (alice, bob):
        frames = [await socket.receive_json_from() for _ in conversation[socket is alice :]]
        assert [(frame["author"], frame["message"]) for frame in frames] == conversation[socket is alice :]


@pytest.mark.parametrize("event", MALFORMED_EVENTS.values(), ids=MALFORMED_EVENTS.keys())
async def test_malformed_event_is_ignored_with_a_warning_and_the_room_goes_on(open_socket, room_name, event, caplog):
    socket = await open_socket(room_name)

    await get_channel_layer().group_send(f"chat_{room_name}", event)
    await socket.send_json_to({"message": "still here"})

    assert (await socket.receive_json_from())["message"] == "still here"
    assert [record.levelname for record in caplog.records if record.name == "chat.consumers"] == ["WARNING"]
