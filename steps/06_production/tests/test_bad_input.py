import json

import pytest

from chat.messages import MAX_MESSAGE_LENGTH

BAD_TEXT_FRAMES = {
    "not JSON": "hello",
    "a JSON array": json.dumps(["hello"]),
    "a JSON string": json.dumps("hello"),
    "no message key": json.dumps({"text": "hello"}),
    "a number as message": json.dumps({"message": 42}),
    "null as message": json.dumps({"message": None}),
    "an empty message": json.dumps({"message": ""}),
    "a blank message": json.dumps({"message": "  \n\t "}),
    "a message over the limit": json.dumps({"message": "x" * (MAX_MESSAGE_LENGTH + 1)}),
}


@pytest.mark.parametrize("frame", BAD_TEXT_FRAMES.values(), ids=BAD_TEXT_FRAMES.keys())
async def test_bad_text_frame_gets_an_error_and_the_socket_stays_usable(open_socket, frame):
    socket = await open_socket()

    await socket.send_to(text_data=frame)
    reply = await socket.receive_json_from()
    await socket.send_json_to({"message": "still here"})

    assert set(reply) == {"error"} and reply["error"]
    assert (await socket.receive_json_from())["message"] == "still here"


async def test_binary_frame_gets_an_error_and_the_socket_stays_usable(open_socket):
    socket = await open_socket()

    await socket.send_to(bytes_data=json.dumps({"message": "hi"}).encode())
    reply = await socket.receive_json_from()
    await socket.send_json_to({"message": "still here"})

    assert "Binary frames are not accepted" in reply["error"]
    assert (await socket.receive_json_from())["message"] == "still here"


async def test_message_at_the_limit_is_accepted(open_socket):
    socket = await open_socket()
    longest = "x" * MAX_MESSAGE_LENGTH

    await socket.send_json_to({"message": longest})

    assert (await socket.receive_json_from())["message"] == longest
