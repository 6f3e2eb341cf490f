"""The one rule for room names, used by every route that takes one.

A name starts with an ASCII letter or digit, then letters, digits, '.', '_' or '-': at most 90
characters. From step 03 on, each room's channel-layer group is named chat_<name>. The pub/sub layer
of the steps takes any group name, but Channels' in-memory layer and the tutorial's RedisChannelLayer
take only those characters, fewer than 100 of them: the rule keeps rooms working on any layer.
"""

PATTERN = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,89}"


class RoomNameConverter:
    regex = PATTERN

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value
