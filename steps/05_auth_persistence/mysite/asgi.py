"""The ASGI entry point daphne serves: one application per protocol."""

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_asgi_app = get_asgi_application()

from chat.middleware import CloseOnRedisError  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402  (needs the apps loaded above)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": CloseOnRedisError(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
