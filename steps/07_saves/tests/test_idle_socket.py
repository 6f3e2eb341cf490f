import asyncio

import pytest

# The tutorial's RedisChannelLayer tears an idle socket down: its blocking read of Redis waits 5 seconds for a
# message, longer than redis-py waits for any answer (5 seconds too, by default). With the read timeout cut to
# half a second, a socket idle for longer than that shows the same failure in a second instead of six.
READ_TIMEOUT_SECONDS = 0.5


@pytest.fixture(autouse=True)
def short_redis_read_timeout(settings):
    layer = settings.CHANNEL_LAYERS["default"]
    hosts = [{**host, "socket_timeout": READ_TIMEOUT_SECONDS} for host in layer["CONFIG"]["hosts"]]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": hosts}}}


async def test_idle_socket_still_receives_the_next_message(open_socket, room_name):
    idle = await open_socket(room_name)
    await asyncio.sleep(READ_TIMEOUT_SECONDS * 3)
    sender = await open_socket(room_name)

    await sender.send_json_to({"message": "still there?"})

    assert (await idle.receive_json_from(timeout=5))["message"] == "still there?"
