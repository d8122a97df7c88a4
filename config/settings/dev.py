"""Local development and `make demo`: debug on, an insecure key that never reaches production."""

import os

os.environ.setdefault("DEBUG", "1")

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or "dev-insecure-labelloop-key-do-not-use-in-production"  # noqa: F405
