import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from .consumers import session_group_name
from .outages import REDIS_ERRORS

logger = logging.getLogger(__name__)


@receiver(user_logged_out)
def close_the_sessions_sockets(sender, request, **kwargs):
    if not request.session.session_key:
        return
    group = session_group_name(request.session.session_key)
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": "session.logged_out"})
    except REDIS_ERRORS as error:
        # Logging out matters more than closing the session's sockets, which fail without Redis anyway.
        logger.error("Logged a session out without closing its sockets: Redis is not reachable (%s).", error)
