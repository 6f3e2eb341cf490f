from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from . import consumers

websocket_urlpatterns = [
    path("ws/chat/<room:room_name>/", consumers.ChatConsumer.as_asgi()),
    # Any other path is refused at the handshake rather than raising "No route found".
    re_path(r"", WebsocketDenier.as_asgi()),
]
