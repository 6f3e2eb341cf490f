import asyncio

# With the tutorial's RedisChannelLayer an idle socket is torn down here: its blocking pop waits up
# to 5 seconds for a message, and redis-py 8 gives up on a read after 5 seconds by default.
IDLE_SECONDS = 6


async def test_idle_socket_still_receives_the_next_message(open_socket, room_name):
    idle = await open_socket(room_name)
    await asyncio.sleep(IDLE_SECONDS)
    sender = await open_socket(room_name)

    await sender.send_json_to({"message": "still there?"})

    assert (await idle.receive_json_from(timeout=5))["message"] == "still there?"
