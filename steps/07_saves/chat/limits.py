"""What one user may cost a process: how many sockets, how fast they send, and how far behind the room they fall."""

import time
import weakref

MESSAGES_PER_SECOND = 10
BURST = 20
MAX_DELAY_SECONDS = 10
MAX_SOCKETS_PER_USER = 10


class SendRate:
    """A token bucket the sockets of one user share: BURST messages at once, then MESSAGES_PER_SECOND on average."""

    of_user = weakref.WeakValueDictionary()  # user id: the bucket, for as long as one of the user's sockets holds it

    @classmethod
    def for_user(cls, user_id):
        return cls.of_user.setdefault(user_id, cls())

    def __init__(self):
        self.tokens = BURST
        self.refilled_at = time.monotonic()
        self.sockets = set()

    def allows_another(self):
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.refilled_at) * MESSAGES_PER_SECOND)
        self.refilled_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
