"""Step 06's settings for a server behind nginx: DJANGO_SETTINGS_MODULE=production_settings, this folder on PYTHONPATH.

The rest, REDIS_URL and the channel layer included, comes from the step's own settings.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from mysite.settings import *  # noqa: F403
from mysite.settings import DATABASES


def from_environment(name):
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"{name} is not set: on a server it comes from the environment, never a default.")
    return value


DEBUG = False
SECRET_KEY = from_environment("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = from_environment("DJANGO_ALLOWED_HOSTS").split(",")
# Only for an origin that differs from the scheme and host Django sees; nginx passes both on, so usually empty.
CSRF_TRUSTED_ORIGINS = [origin for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if origin]
STATIC_ROOT = from_environment("DJANGO_STATIC_ROOT")
# Outside the code, so the user daphne runs as needs to write nowhere else; DATABASE_URL, read by the step's own
# settings, puts the messages in PostgreSQL instead (step 07).
if not os.environ.get("DATABASE_URL"):
    DATABASES = {"default": {**DATABASES["default"], "NAME": from_environment("DJANGO_SQLITE_PATH")}}

# nginx sets this header on every request it passes on, replacing whatever the client sent.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# nginx, not Django, sends plain-HTTP requests to HTTPS.
SILENCED_SYSTEM_CHECKS = ["security.W008"]
