from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    """No start-up side effects: the embedded Redis starts where a process needs it (config/embedded_redis.py)."""

    name = "annotation"
    verbose_name = "Annotation"
