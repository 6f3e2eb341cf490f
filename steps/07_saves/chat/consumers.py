import json
import logging
import re
import time
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from .close_codes import FELL_BEHIND, LOGGED_OUT, SAVE_FAILED, SENDING_TOO_FAST, TOO_MANY_SOCKETS
from .limits import MAX_DELAY_SECONDS, MAX_SOCKETS_PER_USER, MESSAGES_PER_SECOND, SendRate
from .messages import InvalidMessage, read_message
from .models import Room
from .outages import REDIS_ERRORS, RedisOutageMixin
from .saver import Saver, as_frame, as_json

logger = logging.getLogger(__name__)

HISTORY_LENGTH = 50
SERVER_BUSY = "The server is busy: this message was not saved, send it again."
# How long a page told so sends nothing: a busy process is spared reading what it would refuse.
RETRY_AFTER_SECONDS = 0.5


def session_group_name(session_key):
    return f"session_{session_key}"


def user_group_name(user_id):
    return f"user_{user_id}"


def after_number(query_string):
    """The number in ?after=<number>: every message up to it is on the reconnecting page; 0 for a new page."""
    value = parse_qs(query_string.decode()).get("after", ["0"])[0]
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else 0


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
        self.saver = Saver.of_this_process()
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        # Joined before reading, so a message saved meanwhile comes in the history, as an event, or both.
        self.history_end = after_number(self.scope["query_string"])
        await self.send_history(self.history_end)

    async def send_history(self, after):
        """Sends the room's messages after number `after`: the latest HISTORY_LENGTH, saying where they start."""
        latest = self.room.messages.filter(number__gt=after).select_related("author").order_by("-number")
        history = [message async for message in latest[:HISTORY_LENGTH]][::-1]
        if history and history[0].number > after + 1:
            # The page will not get the older messages it lacks: it says how many it leaves out.
            await self.send(text_data=json.dumps({"history_after": history[0].number - 1}))
        if history:
            await self.send(text_data=as_frame([as_json(message) for message in history]))
            self.history_end = max(self.history_end, history[-1].number)

    async def disconnect(self, code):
        """Leaves the groups it joined: none when the handshake was refused."""
        self.send_rate.sockets.discard(self)
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Takes a message to save, unless the socket sends too fast, the frame is no message or the server is busy."""
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
        if not self.saver.take(self, body, read_at):
            await self.send(text_data=json.dumps({"error": SERVER_BUSY, "retry_after": RETRY_AFTER_SECONDS}))

    async def not_saved(self, count, error):
        """Tells the page how many of its latest messages were not saved, if any, and closes."""
        if count:
            await self.send(text_data=json.dumps({"error": f"Your latest messages were not saved: {count} in all."}))
        if isinstance(error, REDIS_ERRORS):
            await self.lost_redis(error, self.base_send)
        else:
            await self.close(code=SAVE_FAILED)

    async def dispatch(self, message):
        # Channels closes stale database connections before every handler, in the thread all database work of the
        # process goes through: a trip there and back for each event, behind whatever waits there. Neither delivering
        # the room's messages nor taking one touches the database; the saver cleans up itself.
        if message["type"] == "chat.messages":
            await self.chat_messages(message)
        elif message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def chat_messages(self, event):
        """Sends the page a batch of the room's messages, unless the socket has fallen too far behind the room."""
        first, last, frame, read_at = (event.get(key) for key in ("first", "last", "frame", "read_at"))
        if not (type(first) is int and type(last) is int and type(frame) is str and type(read_at) is float):
            # Anyone who can reach Redis can publish to the group: an event need not be what the saver sent.
            logger.warning("%s: ignored a malformed chat.messages event", self.room_group_name)
            return
        delay = time.time() - read_at
        self.saver.note_delivery(delay)
        if delay > MAX_DELAY_SECONDS:
            logger.warning("%s: closed a socket %.1f seconds behind the room", self.room_group_name, delay)
            await self.close_with_error(FELL_BEHIND, f"This connection fell {delay:.0f} seconds behind; reconnect.")
            raise StopConsumer
        if last > self.history_end:
            await self.base_send({"type": "websocket.send", "text": frame})

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
