import logging

import redis.exceptions
from django.conf import settings

logger = logging.getLogger(__name__)


class CloseOnRedisError:
    """Closes a socket whose channel layer cannot reach Redis, with one log line instead of a traceback.

    A handshake in progress is refused (HTTP 403); an open socket is closed with code 4011.
    """

    close_code = 4011

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            return await self.app(scope, receive, send)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            logger.error(
                "Redis is not reachable at REDIS_URL=%s (%s). Start redis-server, or set REDIS_URL to a running one.",
                settings.REDIS_URL,
                error,
            )
            await send({"type": "websocket.close", "code": self.close_code})
