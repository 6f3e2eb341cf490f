import json

import pytest

from chat.messages import MAX_MESSAGE_LENGTH
from chat.models import Message

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
    "arrays nested 100,000 deep": "[" * 100_000,
    "a message beside more than 100 arrays": '{"message": "hi", "more": ' + "[" * 100 + "]" * 100 + "}",
    "a lone half of a surrogate pair": json.dumps({"message": "hi \ud800"}),
    "a NUL character": json.dumps({"message": "hi\x00"}),
    "a terminal escape": json.dumps({"message": "hi\x1b[2J"}),
    "a carriage return": json.dumps({"message": "ok\rbob: I quit"}),
    "a right-to-left override": json.dumps({"message": "invoice\u202efdp.exe"}),
    "a right-to-left isolate": json.dumps({"message": "\u2067hi\u2069"}),
    "only zero-width characters": json.dumps({"message": "\u200b\u200c\u200d\u2060\ufeff"}),
    "only whitespace and zero-width spaces": json.dumps({"message": " \u200b\n\u200b\t"}),
}
# Text that looks odd to a filter but is what people write.
UNUSUAL_GOOD_MESSAGES = {
    "a line break": "first line\nsecond line",
    "a tab": "name:\tvalue",
    "an emoji made of others joined by zero-width joiners": "\U0001f469\u200d\U0001f4bb",
    "right-to-left text with a direction mark": "\u05e9\u05dc\u05d5\u05dd\u200f!",
    "brackets, quotes and backslashes": '[{"\\' * 250,
}


@pytest.mark.parametrize("frame", BAD_TEXT_FRAMES.values(), ids=BAD_TEXT_FRAMES.keys())
async def test_bad_text_frame_gets_an_error_and_the_socket_stays_usable(open_socket, frame):
    socket = await open_socket()

    await socket.send_to(text_data=frame)
    reply = await socket.receive_json_from()
    await socket.send_json_to({"message": "still here"})

    assert set(reply) == {"error"} and reply["error"]
    assert (await socket.receive_json_from())["message"] == "still here"


@pytest.mark.parametrize("text", UNUSUAL_GOOD_MESSAGES.values(), ids=UNUSUAL_GOOD_MESSAGES.keys())
async def test_unusual_but_good_message_comes_back_unchanged(open_socket, text):
    socket = await open_socket()

    await socket.send_json_to({"message": text})

    assert (await socket.receive_json_from())["message"] == text


async def test_message_after_a_refused_lone_surrogate_is_saved_and_sent(open_socket, room_name):
    """The database cannot store a lone surrogate: let through, it would fail the save and lose what came after."""
    socket = await open_socket()

    await socket.send_json_to({"message": "hi \ud800"})
    await socket.send_json_to({"message": "after it"})
    reply = await socket.receive_json_from()
    frame = await socket.receive_json_from()

    assert set(reply) == {"error"}
    saved = Message.objects.filter(room__name=room_name).values_list("body", flat=True)
    assert frame["message"] == "after it"
    assert [body async for body in saved] == ["after it"]


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
