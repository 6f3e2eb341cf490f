import json

from channels.generic.websocket import WebsocketConsumer

from .messages import InvalidMessage, read_message


class ChatConsumer(WebsocketConsumer):
    def receive(self, text_data=None, bytes_data=None):
        try:
            message = read_message(text_data)
        except InvalidMessage as error:
            self.send(text_data=json.dumps({"error": str(error)}))
            return
        self.send(text_data=json.dumps({"message": message}))
