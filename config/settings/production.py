"""Production: PostgreSQL and Redis from the environment, and a refusal to start on an unsafe secret."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import SECRET_KEY, env_bool

INSECURE_SECRET_MARKERS = ("insecure", "change-me", "changeme", "secret", "dev-")
MIN_SECRET_LENGTH = 40

if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is not set: production needs a real, random secret key.")
if len(SECRET_KEY) < MIN_SECRET_LENGTH or any(m in SECRET_KEY.lower() for m in INSECURE_SECRET_MARKERS):
    raise ImproperlyConfigured(
        f"SECRET_KEY looks unsafe: use at least {MIN_SECRET_LENGTH} random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

DEBUG = env_bool("DEBUG", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
