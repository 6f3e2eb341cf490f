"""What a client may send: a JSON text frame {"message": "..."} with some text in it."""

import json

MAX_MESSAGE_LENGTH = 1000


class InvalidMessage(ValueError):
    """The frame is not a chat message; the text tells the client why."""


def read_message(text_data):
    if text_data is None:
        raise InvalidMessage('Binary frames are not accepted: send JSON text like {"message": "hi"}.')
    try:
        data = json.loads(text_data)
    except ValueError:
        raise InvalidMessage('Not valid JSON: send {"message": "hi"}.') from None
    if not isinstance(data, dict):
        raise InvalidMessage('Send a JSON object like {"message": "hi"}.')
    message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        raise InvalidMessage('"message" must be a string with some text in it.')
    if len(message) > MAX_MESSAGE_LENGTH:
        raise InvalidMessage(f'"message" is longer than {MAX_MESSAGE_LENGTH} characters.')
    return message
