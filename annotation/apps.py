import os

from django.apps import AppConfig
from django.conf import settings


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        # With no REDIS_URL, every process shares the embedded server; start it if nobody has.
        if not settings.REDIS_URL and os.environ.get("LABELLOOP_EMBEDDED_REDIS", "1") != "0":
            from config.embedded_redis import ensure_running

            ensure_running(settings.EMBEDDED_REDIS_SOCKET)
