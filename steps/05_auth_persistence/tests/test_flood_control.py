import logging
import re

from chat.limits import BURST, MESSAGES_PER_SECOND

SENDING_TOO_FAST = 1008


async def outputs_until_closed(communicator):
    outputs = []
    while not outputs or outputs[-1]["type"] != "websocket.close":
        outputs.append(await communicator.receive_output())
    return outputs


async def test_socket_sending_far_too_fast_is_told_why_and_closed(open_socket, caplog):
    flooder = await open_socket()

    for number in range(BURST * 2):
        await flooder.send_json_to({"message": f"flood {number}"})

    *frames, close = await outputs_until_closed(flooder)
    assert close == {"type": "websocket.close", "code": SENDING_TOO_FAST}
    assert frames[-1]["text"] == f'{{"error": "Too many messages: at most {MESSAGES_PER_SECOND} a second."}}'
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    accepted = int(re.search(r"after (\d+) messages", warning.getMessage())[1])
    assert BURST <= accepted < BURST * 2


async def test_the_rest_of_the_room_keeps_chatting_after_a_flooder_is_closed(open_socket):
    flooder = await open_socket()
    neighbour = await open_socket()

    for number in range(BURST * 2):
        await flooder.send_json_to({"message": f"flood {number}"})
    await outputs_until_closed(flooder)
    await neighbour.send_json_to({"message": "still here"})

    received = [(await neighbour.receive_json_from())["message"] for _ in range(BURST + 1)]
    while received[-1] != "still here":
        received.append((await neighbour.receive_json_from())["message"])
    assert len(received) <= BURST * 2
