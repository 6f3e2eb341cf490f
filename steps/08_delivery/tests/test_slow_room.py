import asyncio

import pytest
from channels_redis.pubsub import RedisPubSubLoopLayer

# How long anything in this test may take; the slow work itself lasts until the test lets it end.
SECONDS = 5


@pytest.fixture
def slow_room(room_name, monkeypatch):
    """A room whose broadcasts wait until the test lets them go on, standing in for any slow awaited work.

    Yields the room, an event set once its first broadcast has begun, and one that lets the broadcasts go on.
    """
    slow_group = f"chat_{room_name}"
    group_send = RedisPubSubLoopLayer.group_send
    slow_work_began, slow_work_may_end = asyncio.Event(), asyncio.Event()

    async def slow_group_send(self, group, message):
        if group == slow_group:
            slow_work_began.set()
            await asyncio.wait_for(slow_work_may_end.wait(), SECONDS)
        await group_send(self, group, message)

    monkeypatch.setattr(RedisPubSubLoopLayer, "group_send", slow_group_send)
    return room_name, slow_work_began, slow_work_may_end


async def test_slow_work_in_one_room_does_not_hold_up_another(open_socket, slow_room):
    room_name, slow_work_began, slow_work_may_end = slow_room
    slow = await open_socket(room_name)
    quick = await open_socket(f"{room_name}-quick")

    await slow.send_json_to({"message": "takes a while"})
    await asyncio.wait_for(slow_work_began.wait(), SECONDS)
    await quick.send_json_to({"message": "right away"})

    assert (await quick.receive_json_from(timeout=SECONDS))["message"] == "right away"
    slow_work_may_end.set()
    assert (await slow.receive_json_from(timeout=SECONDS))["message"] == "takes a while"
