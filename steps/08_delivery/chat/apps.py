from django.apps import AppConfig
from django.urls import register_converter

from .room_names import RoomNameConverter


class ChatConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'chat'

    def ready(self):
        register_converter(RoomNameConverter, 'room')
        from . import signals  # noqa: F401  (connects the receivers that close sockets)
