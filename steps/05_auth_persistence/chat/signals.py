from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from .consumers import session_group_name


@receiver(user_logged_out)
def close_the_sessions_sockets(sender, request, **kwargs):
    if request.session.session_key:
        group = session_group_name(request.session.session_key)
        async_to_sync(get_channel_layer().group_send)(group, {"type": "session.logged_out"})
