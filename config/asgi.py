import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_asgi_application()

from config.embedded_redis import ensure_configured  # noqa: E402 - needs the settings loaded above

ensure_configured()  # the web server needs Redis to enqueue: start the embedded one now, not on a first click
