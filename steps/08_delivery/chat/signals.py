import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .consumers import session_group_name, user_group_name
from .outages import REDIS_ERRORS

logger = logging.getLogger(__name__)


@receiver(post_delete, sender=Session)
def close_the_sessions_sockets(sender, instance, **kwargs):
    """Logging out deletes the session, and so do clearsessions and the admin: its sockets close."""
    tell_sockets(session_group_name(instance.session_key), "session.logged_out", "A session ended")


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def check_the_users_sockets(sender, instance, created, update_fields, **kwargs):
    """A new password or a deactivated account logs out the user's sessions: each socket checks its own."""
    if not created and update_fields != {"last_login"}:  # logging in changes nothing the sockets rely on
        tell_sockets(user_group_name(instance.pk), "user.changed", "A user changed")


def tell_sockets(group, event_type, what):
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": event_type})
    except REDIS_ERRORS as error:
        # Logging out matters more than closing the session's sockets, which fail without Redis anyway.
        logger.error("%s without closing its sockets: Redis is not reachable (%s).", what, error)
