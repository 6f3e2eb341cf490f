"""Step 08's settings for a server behind nginx: DJANGO_SETTINGS_MODULE=production_settings, this folder on PYTHONPATH.

The rest, REDIS_URL and the channel layer included, comes from the step's own settings.
"""

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from mysite.settings import *  # noqa: F403
from mysite.settings import DATABASES, REDIS_URLS
from mysite.settings import SECRET_KEY as STEP_SECRET_KEY

# environment.example's key, and the step's own: anyone can read both, and sign sessions with them.
PUBLIC_SECRET_KEYS = {"replace-me-with-a-long-random-string", STEP_SECRET_KEY}
PUBLIC_REDIS_PASSWORD = "replace-me-with-redis-requirepass"


def from_environment(name):
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"{name} is not set: on a server it comes from the environment, never a default.")
    return value


def secret_key():
    key = from_environment("DJANGO_SECRET_KEY")
    if key in PUBLIC_SECRET_KEYS:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is a key anyone can read in the repository: put a new one in the environment file, "
            'made with python3 -c "import secrets; print(secrets.token_urlsafe(50))".'
        )
    return key


def allowed_hosts():
    hosts = [host.strip() for host in from_environment("DJANGO_ALLOWED_HOSTS").split(",") if host.strip()]
    if any("*" in host for host in hosts):
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS contains *: name the chat's own host names, or a page on any site could open sockets "
            "to it with a visitor's session."
        )
    return hosts


def check_redis_passwords():
    for url in REDIS_URLS:
        if urlsplit(url).password in (None, "", PUBLIC_REDIS_PASSWORD):
            raise ImproperlyConfigured(
                f"The Redis at {urlsplit(url).hostname}:{urlsplit(url).port} has no password of its own: whoever can "
                "reach it could publish chat messages under any name. Set requirepass in its configuration, and put "
                "the password in the URL: redis://:<password>@host:6379/0."
            )


DEBUG = False
SECRET_KEY = secret_key()
ALLOWED_HOSTS = allowed_hosts()
check_redis_passwords()
# Only for an origin that differs from the scheme and host Django sees; nginx passes both on, so usually empty.
CSRF_TRUSTED_ORIGINS = [origin for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if origin]
STATIC_ROOT = from_environment("DJANGO_STATIC_ROOT")
# Outside the code, so the user uvicorn runs as needs to write nowhere else; DATABASE_URL, read by the step's own
# settings, puts the messages in PostgreSQL instead.
if not os.environ.get("DATABASE_URL"):
    DATABASES = {"default": {**DATABASES["default"], "NAME": from_environment("DJANGO_SQLITE_PATH")}}

# nginx sets this header on every request it passes on, replacing whatever the client sent.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# nginx, not Django, sends plain-HTTP requests to HTTPS (W008) and sends the HSTS header (W004).
SILENCED_SYSTEM_CHECKS = ["security.W008", "security.W004"]
