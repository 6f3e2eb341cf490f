"""Why the server closed a socket, for the page and the tests to tell apart.

daphne closes a socket with 1000 or a code from 3000 to 4999 only, so each is 4000 plus the standard code that
means the same, or plus HTTP's status for a logout.
"""

SENDING_TOO_FAST = 4008  # 1008: policy violation
TOO_MANY_SOCKETS = 4008  # the same; the error frame says which limit
REDIS_UNREACHABLE = 4011  # 1011: internal error
FELL_BEHIND = 4013  # 1013: try again later
LOGGED_OUT = 4401  # HTTP 401: reconnecting would be refused
SAVE_FAILED = 4500  # HTTP 500: the page reconnects and sends again what was not saved
