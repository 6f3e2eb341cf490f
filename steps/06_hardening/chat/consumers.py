import json
import logging
import re
import time
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from .close_codes import FELL_BEHIND, LOGGED_OUT, SENDING_TOO_FAST, TOO_MANY_SOCKETS
from .limits import MAX_DELAY_SECONDS, MAX_SOCKETS_PER_USER, MESSAGES_PER_SECOND, SendRate
from .messages import InvalidMessage, read_message
from .models import Message, Room
from .outages import RedisOutageMixin

logger = logging.getLogger(__name__)

HISTORY_LENGTH = 50


def session_group_name(session_key):
    return f"session_{session_key}"


def user_group_name(user_id):
    return f"user_{user_id}"


def after_id(query_string):
    """The id in ?after=<id>: the last message a reconnecting page has; 0 for a page with none."""
    value = parse_qs(query_string.decode()).get("after", ["0"])[0]
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else 0


@database_sync_to_async
def save_message(room, author, body):
    return Message.objects.create(room=room, author=author, body=body)


def as_frame(message):
    return {
        "id": message.id,
        "author": message.author.username,
        "message": message.body,
        "created": message.created.isoformat(),
    }


class ChatConsumer(RedisOutageMixin, AsyncWebsocketConsumer):
    send_rate = SendRate()  # the user's, once the handshake is accepted

    async def connect(self):
        """Joins the room, the session's and the user's groups, then sends the history the page lacks."""
        self.user = self.scope["user"]
        if not self.user.is_authenticated:
            await self.close()
            return
        room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{room_name}"
        self.send_rate = SendRate.for_user(self.user.pk)
        if len(self.send_rate.sockets) >= MAX_SOCKETS_PER_USER:
            await self.accept()
            await self.close_with_error(TOO_MANY_SOCKETS, f"Too many open pages: at most {MAX_SOCKETS_PER_USER} each.")
            return
        self.send_rate.sockets.add(self)
        self.room, _ = await Room.objects.aget_or_create(name=room_name)
        session_group = session_group_name(self.scope["session"].session_key)
        self.groups_joined = (self.room_group_name, session_group, user_group_name(self.user.pk))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        # Joined before reading, so a message saved meanwhile comes in the history, as an event, or both.
        self.history_end_id = after_id(self.scope["query_string"])
        latest = self.room.messages.filter(id__gt=self.history_end_id).select_related("author").order_by("-id")
        history = [message async for message in latest[:HISTORY_LENGTH]]
        for message in reversed(history):
            await self.send(text_data=json.dumps(as_frame(message)))
            self.history_end_id = message.id

    async def disconnect(self, code):
        """Leaves the groups it joined: none when the handshake was refused."""
        self.send_rate.sockets.discard(self)
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Saves a message and sends it to the room, unless the socket sends too fast or the frame is no message."""
        read_at = time.time()
        if not self.send_rate.allows_another():
            logger.warning("%s: closed a socket of a user sending too fast", self.room_group_name)
            error = f"Too many messages: at most {MESSAGES_PER_SECOND} a second from all your pages."
            await self.close_with_error(SENDING_TOO_FAST, error)
            raise StopConsumer
        try:
            body = read_message(text_data)
        except InvalidMessage as error:
            await self.send(text_data=json.dumps({"error": str(error)}))
            return
        message = await save_message(self.room, self.user, body)
        event = {"type": "chat.message", "frame": as_frame(message), "read_at": read_at}
        await self.channel_layer.group_send(self.room_group_name, event)

    async def chat_message(self, event):
        """Sends a message of the room to the page, unless the socket has fallen too far behind the room."""
        frame, read_at = event.get("frame"), event.get("read_at")
        if not isinstance(frame, dict) or not isinstance(frame.get("id"), int) or not isinstance(read_at, float):
            # Anyone who can reach Redis can publish to the group: an event need not be what receive sent.
            logger.warning("%s: ignored a malformed chat.message event", self.room_group_name)
            return
        delay = time.time() - read_at
        if delay > MAX_DELAY_SECONDS:
            logger.warning("%s: closed a socket %.1f seconds behind the room", self.room_group_name, delay)
            await self.close_with_error(FELL_BEHIND, f"This connection fell {delay:.0f} seconds behind; reconnect.")
            raise StopConsumer
        if event["frame"]["id"] > self.history_end_id:
            await self.send(text_data=json.dumps(event["frame"]))

    async def session_logged_out(self, event):
        """Closes the socket when its session ends: logged out in any tab, or deleted."""
        await self.close(code=LOGGED_OUT)

    async def user_changed(self, event):
        """Closes the socket once its session no longer logs the user in: a new password, a deactivated account."""
        if not (await get_user(self.scope)).is_authenticated:
            await self.close(code=LOGGED_OUT)

    async def close_with_error(self, code, error):
        """Tells the client why and closes; leaves the room now, not once the client has answered the close."""
        await self.send(text_data=json.dumps({"error": error}))
        await self.close(code=code)
        await self.disconnect(code)
