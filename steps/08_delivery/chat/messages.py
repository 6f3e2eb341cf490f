"""What a client may send: a JSON text frame {"message": "..."} with some text in it."""

import json
import re
import unicodedata

MAX_MESSAGE_LENGTH = 1000
# json.loads goes one call deeper for every array or object it opens: 100,000 "[" in a row exhaust the stack with a
# RecursionError. A chat message is one object; a frame may open this many at most, counted before it is parsed.
MAX_BRACKETS = 100
# Characters refused anywhere in a message:
# - control characters, NUL among them, except the line break and the tab that people write;
# - half of a surrogate pair on its own ("\ud800" in JSON): UTF-8 cannot encode it, so no database can store it;
# - bidi overrides, embeddings and isolates: they reorder the text after them, so it would read unlike what it says.
REFUSED_CHARACTER = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


class InvalidMessage(ValueError):
    """The frame is not a chat message; the text tells the client why."""


def read_message(text_data):
    if text_data is None:
        raise InvalidMessage('Binary frames are not accepted: send JSON text like {"message": "hi"}.')
    # Brackets inside strings are text. Once escaped \\ and \" are taken out, a string runs from a quote to the next.
    structure = re.sub(r'"[^"]*"', "", text_data.replace("\\\\", "").replace('\\"', ""))
    if structure.count("[") + structure.count("{") > MAX_BRACKETS:
        raise InvalidMessage(f'More than {MAX_BRACKETS} arrays or objects: send {{"message": "hi"}}.')
    try:
        data = json.loads(text_data)
    except ValueError:
        raise InvalidMessage('Not valid JSON: send {"message": "hi"}.') from None
    if not isinstance(data, dict):
        raise InvalidMessage('Send a JSON object like {"message": "hi"}.')
    message = data.get("message")
    if not isinstance(message, str) or not any(is_visible(character) for character in message):
        raise InvalidMessage('"message" must be a string with some text in it.')
    if len(message) > MAX_MESSAGE_LENGTH:
        raise InvalidMessage(f'"message" is longer than {MAX_MESSAGE_LENGTH} characters.')
    if refused := REFUSED_CHARACTER.search(message):
        raise InvalidMessage(f'"message" may not contain the character U+{ord(refused[0]):04X}.')
    return message


def is_visible(character):
    # A message of nothing but whitespace and format characters (category Cf: zero-width spaces and joiners among
    # them) looks empty.
    return not character.isspace() and unicodedata.category(character) != "Cf"
