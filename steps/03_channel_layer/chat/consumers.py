import json
import logging
import time

from asgiref.sync import async_to_sync
from channels.exceptions import StopConsumer
from channels.generic.websocket import WebsocketConsumer

from .limits import MAX_DELAY_SECONDS, MESSAGES_PER_SECOND, SendRate, seconds_since
from .messages import InvalidMessage, read_message

logger = logging.getLogger(__name__)

# daphne closes with 1000 or a code from 3000 to 4999 only: 4000 plus the standard 1008 and 1013.
SENDING_TOO_FAST = 4008
FELL_BEHIND = 4013


class ChatConsumer(WebsocketConsumer):
    def connect(self):
        self.room_group_name = f"chat_{self.scope['url_route']['kwargs']['room_name']}"
        self.send_rate = SendRate()
        self.delivered = 0
        async_to_sync(self.channel_layer.group_add)(self.room_group_name, self.channel_name)
        self.accept()

    def disconnect(self, code):
        async_to_sync(self.channel_layer.group_discard)(self.room_group_name, self.channel_name)

    def receive(self, text_data=None, bytes_data=None):
        if not self.send_rate.allows_another():
            logger.warning(
                "%s: closed a socket sending faster than %d messages a second, after %d messages",
                self.room_group_name,
                MESSAGES_PER_SECOND,
                self.send_rate.accepted,
            )
            self.close_with_error(SENDING_TOO_FAST, f"Too many messages: at most {MESSAGES_PER_SECOND} a second.")
            raise StopConsumer
        try:
            message = read_message(text_data)
        except InvalidMessage as error:
            self.send(text_data=json.dumps({"error": str(error)}))
            return
        event = {"type": "chat.message", "message": message, "sent_at": time.time()}
        async_to_sync(self.channel_layer.group_send)(self.room_group_name, event)

    def chat_message(self, event):
        delay = seconds_since(event["sent_at"])
        if delay > MAX_DELAY_SECONDS:
            logger.warning(
                "%s: closed a socket %.1f seconds behind the room, after delivering %d messages to it",
                self.room_group_name,
                delay,
                self.delivered,
            )
            self.close_with_error(FELL_BEHIND, f"This connection fell {delay:.0f} seconds behind; reconnect.")
            raise StopConsumer
        self.send(text_data=json.dumps({"message": event["message"]}))
        self.delivered += 1

    def close_with_error(self, code, error):
        """Tells the client why and closes; leaves the room now, not once the client has answered the close."""
        self.send(text_data=json.dumps({"error": error}))
        self.close(code=code)
        self.disconnect(code)
