"""What a consumer does when Redis cannot be reached: one log line, the socket closed, its groups left."""

import logging

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .close_codes import REDIS_UNREACHABLE

logger = logging.getLogger(__name__)

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)


class RedisOutageMixin:
    """For a consumer whose socket joins the groups in `groups_joined`."""

    groups_joined = ()

    async def __call__(self, scope, receive, send):
        """Runs the consumer for the whole life of its socket; a Redis error anywhere inside ends up here."""
        try:
            await super().__call__(scope, receive, send)
        except REDIS_ERRORS as error:
            await self.lost_redis(error, send)
        finally:
            # Channels runs disconnect when the socket closes, not when the consumer ends another way: on a Redis
            # error, or when daphne's send raises for a page that has begun to close. Once more is harmless.
            await self.disconnect(1006)

    async def lost_redis(self, error, send):
        """Logs one line, closes the socket (or refuses its handshake) and leaves its groups in this process."""
        # The error names the host and port; REDIS_URL itself may hold a password.
        logger.error("Redis is not reachable (%s). Start redis-server, or set REDIS_URL to a running one.", error)
        # Refuses a handshake with HTTP 403; closes an open socket with the code.
        await send({"type": "websocket.close", "code": REDIS_UNREACHABLE})
        await self.leave_groups_without_redis()

    async def leave_groups_without_redis(self):
        """The channel layer forgets the socket before it tells Redis, so only telling Redis can fail here."""
        for group in self.groups_joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except REDIS_ERRORS:
                pass
        self.groups_joined = ()
