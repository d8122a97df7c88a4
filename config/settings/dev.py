"""Local development and `make demo`: an insecure key that never reaches production, static files served
straight from the source folders. Debug pages are off unless DEBUG=1: the demo is what a new user sees, and
Django's debug 404 lists every URL pattern."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = SECRET_KEY or "dev-insecure-labelloop-key-do-not-use-in-production"  # noqa: F405
# WhiteNoise serves static files from the app and project folders, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
