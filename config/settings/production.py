"""Production: PostgreSQL and Redis from the environment, and a refusal to start on an unsafe secret."""

import os

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
# Behind TLS (the default), plain HTTP is redirected and browsers are told to stay on HTTPS; a stack served
# over plain HTTP on a private network (docker/compose.yaml) sets SECURE_SSL_REDIRECT=0 SECURE_COOKIES=0.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Submitting a domain to the browsers' preload list is an operator's decision, not a default.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# A load balancer's health check asks over plain HTTP: it must not be redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
