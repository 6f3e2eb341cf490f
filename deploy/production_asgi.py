"""Step 08's application behind nginx: uvicorn serves production_asgi:application, this folder on PYTHONPATH.

The step checks only the host name of a socket's Origin, so a page on another port or over plain HTTP of an allowed
host may open one. Here a socket's Origin must be the site's own, scheme and port included, as Django's CSRF check
wants for a form: `https://` and the Host the browser asked for, or one of CSRF_TRUSTED_ORIGINS.
"""

from channels.routing import ProtocolTypeRouter
from channels.security.websocket import WebsocketDenier
from django.conf import settings

from mysite.asgi import application as step_application


class SameOriginOnly:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin1")
        own_origin = f"https://{headers.get(b'host', b'').decode('latin1')}"
        if scope["scheme"] == "wss" and (origin == own_origin or origin in settings.CSRF_TRUSTED_ORIGINS):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


application = ProtocolTypeRouter({"http": step_application, "websocket": SameOriginOnly(step_application)})
