"""The one rule for room names, used by every route that takes one.

A name starts with an ASCII letter or digit, then letters, digits, '.', '_' or '-': at most 90
characters, so the channel-layer group name built from it stays under the 100-character limit.
"""

PATTERN = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,89}"


class RoomNameConverter:
    regex = PATTERN

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value
