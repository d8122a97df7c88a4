"""Local development and `make demo`: debug on, an insecure key that never reaches production."""

import os

os.environ.setdefault("DEBUG", "1")

from .base import *  # noqa: E402,F403
from .base import env_bool  # noqa: E402

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or "dev-insecure-labelloop-key-do-not-use-in-production"  # noqa: F405
