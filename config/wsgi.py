import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()

from config.embedded_redis import ensure_configured  # noqa: E402 - needs the settings loaded above

ensure_configured()  # the web server needs Redis to enqueue: start the embedded one now, not on a first click
