import json
import logging

from channels.generic.websocket import AsyncWebsocketConsumer

from .messages import InvalidMessage, read_message

logger = logging.getLogger(__name__)


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.room_group_name = f"chat_{self.scope['url_route']['kwargs']['room_name']}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = read_message(text_data)
        except InvalidMessage as error:
            await self.send(text_data=json.dumps({"error": str(error)}))
            return
        event = {"type": "chat.message", "message": message}
        await self.channel_layer.group_send(self.room_group_name, event)

    async def chat_message(self, event):
        if not isinstance(event.get("message"), str):
            # Anyone who can reach Redis can publish to the group: an event need not be what receive sent.
            logger.warning("%s: ignored a malformed chat.message event", self.room_group_name)
            return
        await self.send(text_data=json.dumps({"message": event["message"]}))
