import asyncio

import pytest
from channels_redis.pubsub import RedisPubSubLoopLayer

SLOW_SECONDS = 2


@pytest.fixture
def slow_room(room_name, monkeypatch):
    """A room whose broadcasts take SLOW_SECONDS, standing in for any slow awaited work.

    Yields the room and an event set once its first broadcast has begun.
    """
    slow_group = f"chat_{room_name}"
    group_send = RedisPubSubLoopLayer.group_send
    slow_work_began = asyncio.Event()

    async def slow_group_send(self, group, message):
        if group == slow_group:
            slow_work_began.set()
            await asyncio.sleep(SLOW_SECONDS)
        await group_send(self, group, message)

    monkeypatch.setattr(RedisPubSubLoopLayer, "group_send", slow_group_send)
    return room_name, slow_work_began


async def test_slow_work_in_one_room_does_not_hold_up_another(open_socket, slow_room):
    room_name, slow_work_began = slow_room
    slow = await open_socket(room_name)
    quick = await open_socket(f"{room_name}-quick")

    await slow.send_json_to({"message": "takes a while"})
    await asyncio.wait_for(slow_work_began.wait(), SLOW_SECONDS)
    await quick.send_json_to({"message": "right away"})

    assert (await quick.receive_json_from(timeout=SLOW_SECONDS / 2))["message"] == "right away"
    assert (await slow.receive_json_from(timeout=SLOW_SECONDS * 2))["message"] == "takes a while"
