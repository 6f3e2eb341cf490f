import asyncio
import json
import logging
import re
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import transaction
from django.db.models import F
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .limits import MAX_DELAY_SECONDS, MESSAGES_PER_SECOND, SendRate, seconds_since
from .messages import InvalidMessage, read_message
from .models import Message, Room

logger = logging.getLogger(__name__)

HISTORY_LENGTH = 50
# daphne closes with 1000 or a code from 3000 to 4999 only: 4000 plus the standard 1008, 1011 and 1013.
SENDING_TOO_FAST = 4008
REDIS_UNREACHABLE = 4011
FELL_BEHIND = 4013
# A handshake is refused with HTTP 403; a socket already open is closed with this code.
LOGGED_OUT = 4401
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)


def session_group_name(session_key):
    return f"session_{session_key}"


def after_number(query_string):
    """The number in ?after=<number>: every message up to it is on the reconnecting page; 0 for a new page."""
    value = parse_qs(query_string.decode()).get("after", ["0"])[0]
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else 0


@database_sync_to_async
def save_message(room, author, body):
    with transaction.atomic():
        # The update locks the room until the save commits, so no two messages get the same number.
        Room.objects.filter(pk=room.pk).update(message_count=F("message_count") + 1)
        number = Room.objects.values_list("message_count", flat=True).get(pk=room.pk)
        return Message.objects.create(room=room, number=number, author=author, body=body)


def as_frame(message):
    return {
        "id": message.id,
        "number": message.number,
        "author": message.author.username,
        "message": message.body,
        "created": message.created.isoformat(),
    }


class ChatConsumer(AsyncWebsocketConsumer):
    groups_joined = ()
    to_save = None  # the socket's messages the saver has yet to save and broadcast, once connect starts it

    async def connect(self):
        self.user = self.scope["user"]
        if not self.user.is_authenticated:
            await self.close()
            return
        room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room, _ = await Room.objects.aget_or_create(name=room_name)
        self.room_group_name = f"chat_{room_name}"
        self.groups_joined = (self.room_group_name, session_group_name(self.scope["session"].session_key))
        self.send_rate = SendRate()
        self.delivered = 0
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.to_save = asyncio.Queue()
        self.saver = asyncio.create_task(self.save_and_broadcast())
        # Joined before reading, so a message saved meanwhile comes in the history, as an event, or both.
        after = after_number(self.scope["query_string"])
        latest = self.room.messages.filter(number__gt=after).select_related("author").order_by("-number")
        history = [message async for message in latest[:HISTORY_LENGTH]][::-1]
        self.history_end = after
        if history and history[0].number > after + 1:
            # The page will not get the older messages it lacks: it must not wait for them.
            await self.send(text_data=json.dumps({"history_after": history[0].number - 1}))
        for message in history:
            await self.send(text_data=json.dumps(as_frame(message)))
            self.history_end = message.number

    async def disconnect(self, code):
        self.stop_saving()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if not self.send_rate.allows_another():
            logger.warning(
                "%s: closed a socket sending faster than %d messages a second, after %d messages",
                self.room_group_name,
                MESSAGES_PER_SECOND,
                self.send_rate.accepted,
            )
            await self.close_with_error(SENDING_TOO_FAST, f"Too many messages: at most {MESSAGES_PER_SECOND} a second.")
            raise StopConsumer
        try:
            body = read_message(text_data)
        except InvalidMessage as error:
            await self.send(text_data=json.dumps({"error": str(error)}))
            return
        self.to_save.put_nowait(body)

    async def save_and_broadcast(self):
        """Saves and broadcasts the socket's messages in the order they came, in a task of their own: meanwhile
        the socket goes on delivering the room's messages instead of waiting for the database."""
        try:
            while (body := await self.to_save.get()) is not None:
                message = await save_message(self.room, self.user, body)
                event = {"type": "chat.message", "frame": as_frame(message), "sent_at": time.time()}
                await self.channel_layer.group_send(self.room_group_name, event)
        except REDIS_ERRORS as error:
            await self.lost_redis(error, self.base_send)
        except Exception:
            # Otherwise the socket would go on accepting messages that nothing saves.
            logger.exception("%s: closed a socket whose message could not be saved", self.room_group_name)
            await self.close()

    def stop_saving(self):
        """The saver saves what it still holds, then stops."""
        if self.to_save is not None:
            self.to_save.put_nowait(None)

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except REDIS_ERRORS as error:
            await self.lost_redis(error, send)

    async def lost_redis(self, error, send):
        logger.error(
            "Redis is not reachable at REDIS_URL=%s (%s). Start redis-server, or set REDIS_URL to a running one.",
            settings.REDIS_URL,
            error,
        )
        # Refuses a handshake, closes an open socket; either way this process leaves the socket's groups.
        await send({"type": "websocket.close", "code": REDIS_UNREACHABLE})
        self.stop_saving()
        await self.leave_groups_without_redis()

    async def dispatch(self, message):
        # Channels closes stale database connections, in a thread, before every handler. Delivering a chat
        # message touches no database, and save_message does the same clean-up in its own trip there.
        if message["type"] == "chat.message":
            await self.chat_message(message)
        elif message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def leave_groups_without_redis(self):
        """The channel layer forgets the socket before it tells Redis, so only telling Redis can fail here."""
        for group in self.groups_joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except REDIS_ERRORS:
                pass

    async def chat_message(self, event):
        delay = seconds_since(event["sent_at"])
        if delay > MAX_DELAY_SECONDS:
            logger.warning(
                "%s: closed a socket %.1f seconds behind the room, after delivering %d messages to it",
                self.room_group_name,
                delay,
                self.delivered,
            )
            await self.close_with_error(FELL_BEHIND, f"This connection fell {delay:.0f} seconds behind; reconnect.")
            raise StopConsumer
        if event["frame"]["number"] > self.history_end:
            await self.send(text_data=json.dumps(event["frame"]))
            self.delivered += 1

    async def session_logged_out(self, event):
        await self.close(code=LOGGED_OUT)

    async def close_with_error(self, code, error):
        """Tells the client why and closes; leaves the room now, not once the client has answered the close."""
        await self.send(text_data=json.dumps({"error": error}))
        await self.close(code=code)
        await self.disconnect(code)
