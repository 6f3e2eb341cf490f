import asyncio
import json
import logging
import re
import time
from urllib.parse import parse_qs

from autobahn.exception import Disconnected
from channels.auth import get_user
from channels.db import aclose_old_connections
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
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
SERVER_BUSY = "The server is busy: this message was not saved, send it again."
# How long a page told so sends nothing: a busy process is spared reading what it would refuse.
RETRY_AFTER_SECONDS = 0.5
NOT_SAVED = "Your latest messages were not saved: they are sent again as soon as the page reconnects."


def session_group_name(session_key):
    return f"session_{session_key}"


def user_group_name(user_id):
    return f"user_{user_id}"


def after_number(query_string):
    """The number in ?after=<number>: every message up to it is on the reconnecting page; 0 for a new page."""
    value = parse_qs(query_string.decode()).get("after", ["0"])[0]
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else 0


def read_page_fields(text_data):
    """The id the page gave its message, so that sending it again saves it once, and the number after which the page
    asks for the room's messages: each None when the frame has none."""
    try:
        data = json.loads(text_data)
        client_id, after = data.get("client_id"), data.get("fetch_after")
    except (TypeError, ValueError, RecursionError, AttributeError):
        return None, None
    client_id = client_id if isinstance(client_id, str) and CLIENT_ID.fullmatch(client_id) else None
    return client_id, after if type(after) is int and after >= 0 else None


class ChatConsumer(RedisOutageMixin, AsyncWebsocketConsumer):
    send_rate = SendRate()  # the user's, once the handshake is accepted
    last_taken = None  # the future of the latest message the socket took, done once it is saved and sent

    async def __call__(self, scope, receive, send):
        """Runs the consumer for the life of its socket; a page that reads nothing for too long leaves the room."""
        task, loop = asyncio.current_task(), asyncio.get_running_loop()
        # Local, not the consumer's: Channels keeps send_and_time on the consumer, which it must not hold in turn.
        sending_since = None  # when the send that waits for the page began, by the event loop's clock
        stopped_reading = False  # whether a send waited MAX_DELAY_SECONDS for the page to read

        async def send_and_time(message):
            # uvicorn's send waits while the socket's buffer is full (daphne's never does, and buffers without limit).
            nonlocal sending_since
            sending_since = loop.time()
            try:
                await send(message)
            finally:
                sending_since = None

        def watch():
            # Once a second, not a timer for every send: what a page's messages cost stays what it was.
            nonlocal watching, stopped_reading
            if sending_since is not None and loop.time() - sending_since > MAX_DELAY_SECONDS:
                stopped_reading = True
                task.cancel()
            else:
                watching = loop.call_later(1, watch)

        watching = loop.call_later(1, watch)
        try:
            await super().__call__(scope, receive, send_and_time)
        except asyncio.CancelledError:
            if not stopped_reading:
                raise
            task.uncancel()
            logger.warning("%s: a socket's page read nothing for %s seconds", self.room_group_name, MAX_DELAY_SECONDS)
            await self.disconnect(FELL_BEHIND)
            # Behind what the page has not read: it finds them once it reads again, or never, when it goes.
            error = f"This connection fell {MAX_DELAY_SECONDS} seconds behind; reconnect."
            await send({"type": "websocket.send", "text": json.dumps({"error": error})})
            await send({"type": "websocket.close", "code": FELL_BEHIND})
        except (OSError, Disconnected):
            # What a server's send raises once the page has gone (uvicorn's ClientDisconnected) or has begun to close
            # (daphne's Disconnected). The mixin has run disconnect, and neither server needs the error back: uvicorn
            # ignores its own, and daphne would log its own as the consumer's.
            pass
        finally:
            watching.cancel()

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
        """Waits until what the socket sent is saved and sent, then leaves the groups it joined (none if refused)."""
        self.send_rate.sockets.discard(self)
        if self.last_taken is not None:
            await asyncio.shield(self.last_taken)
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
        client_id, fetch_after = read_page_fields(text_data)
        if fetch_after is not None:
            await aclose_old_connections()  # what dispatch skips, for the one frame that reads the database
            await self.send_history(fetch_after)
            return
        try:
            body = read_message(text_data)
        except InvalidMessage as error:
            await self.send(text_data=json.dumps({"error": str(error), "refused": client_id}))
            return
        if (taken := self.saver.take(self, body, client_id, read_at)) is None:
            refusal = {"error": SERVER_BUSY, "refused": client_id, "retry_after": RETRY_AFTER_SECONDS}
            await self.send(text_data=json.dumps(refusal))
            return
        self.last_taken = taken

    async def not_saved(self, client_ids, error):
        """Names the messages that were not saved, which the page sends again once it has reconnected, and closes."""
        if client_ids:
            await self.send(text_data=json.dumps({"error": NOT_SAVED, "not_saved": client_ids}))
        if isinstance(error, REDIS_ERRORS):
            await self.lost_redis(error, self.base_send)
        else:
            await self.close(code=SAVE_FAILED)

    async def dispatch(self, message):
        # Channels closes stale database connections before every handler, in the thread all database work of the
        # process goes through: a trip there and back for each event, behind whatever waits there. Neither delivering
        # the room's messages nor taking one touches the database; a page's fetch and the saver clean up themselves.
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
