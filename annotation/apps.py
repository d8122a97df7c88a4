from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    """No start-up side effects beyond registering the `<id:...>` path converter (core/converters.py).

    The embedded Redis starts where a process needs it (config/embedded_redis.py). The converter is
    registered here, at django.setup(), because any urls module (annotation's or training's) may be
    imported before config.urls.
    """

    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from core.converters import register

        register()
