import json
import logging
import re
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from .messages import InvalidMessage, read_message
from .models import Message, Room

logger = logging.getLogger(__name__)

HISTORY_LENGTH = 50


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


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.user = self.scope["user"]
        if not self.user.is_authenticated:
            await self.close()
            return
        room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room, _ = await Room.objects.aget_or_create(name=room_name)
        self.room_group_name = f"chat_{room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()
        # Joined before reading, so a message saved meanwhile comes in the history, as an event, or both.
        self.history_end_id = after_id(self.scope["query_string"])
        latest = self.room.messages.filter(id__gt=self.history_end_id).select_related("author").order_by("-id")
        history = [message async for message in latest[:HISTORY_LENGTH]]
        for message in reversed(history):
            await self.send(text_data=json.dumps(as_frame(message)))
            self.history_end_id = message.id

    async def disconnect(self, code):
        if self.user.is_authenticated:
            await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            body = read_message(text_data)
        except InvalidMessage as error:
            await self.send(text_data=json.dumps({"error": str(error)}))
            return
        message = await save_message(self.room, self.user, body)
        event = {"type": "chat.message", "frame": as_frame(message)}
        await self.channel_layer.group_send(self.room_group_name, event)

    async def chat_message(self, event):
        if not isinstance(event.get("frame"), dict) or not isinstance(event["frame"].get("id"), int):
            # Anyone who can reach Redis can publish to the group: an event need not be what receive sent.
            logger.warning("%s: ignored a malformed chat.message event", self.room_group_name)
            return
        if event["frame"]["id"] > self.history_end_id:
            await self.send(text_data=json.dumps(event["frame"]))
