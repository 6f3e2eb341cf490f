from django.apps import AppConfig
from django.urls import register_converter

from .room_names import RoomNameConverter


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self):
        register_converter(RoomNameConverter, "room")
        from . import signals  # noqa: F401  (connects the logout receiver)
