"""What one socket may cost its room: how fast it may send, and how far behind the room it may fall."""

import time

MESSAGES_PER_SECOND = 10
BURST = 20
MAX_DELAY_SECONDS = 10


class SendRate:
    """A token bucket: a socket may send BURST messages at once, then MESSAGES_PER_SECOND on average."""

    def __init__(self):
        self.tokens = BURST
        self.refilled_at = time.monotonic()
        self.accepted = 0

    def allows_another(self):
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.refilled_at) * MESSAGES_PER_SECOND)
        self.refilled_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        self.accepted += 1
        return True


def seconds_since(sent_at):
    return time.time() - sent_at
