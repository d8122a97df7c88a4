"""Failed sign-ins counted per username and per client address in Django's cache, refused past a limit.

Both the login page and POST /api/auth/token/ ask `login_refused` before checking a password and call
`login_failed` after a wrong one. Once LABELLOOP_LOGIN_MAX_FAILURES failures for the same username, or from
the same address, fall within LABELLOOP_LOGIN_WINDOW_S, every attempt is refused, the right password
included, until the window (counted from the first failure) ends. The cache is Redis when REDIS_URL is set,
so every web process shares the counts; otherwise a per-process local memory cache.

The address is REMOTE_ADDR: behind a reverse proxy that is the proxy's, so the per-username limit is what
holds there (X-Forwarded-For is not trusted, since any client can write it).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

TOO_MANY_FAILURES = "Too many failed sign-ins: try again in {minutes} minutes."

KEY_PREFIX = "labelloop:login-failures"


def _keys(*, username: str, address: str) -> list[str]:
    # Hashed so that any username (spaces, 150 characters of anything) makes a valid cache key.
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()
    keys = [f"{KEY_PREFIX}:user:{name}"]
    if address:
        keys.append(f"{KEY_PREFIX}:ip:{hashlib.sha256(address.encode()).hexdigest()}")
    return keys


def client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or ""


def refusal_message() -> str:
    return TOO_MANY_FAILURES.format(minutes=max(1, round(settings.LABELLOOP_LOGIN_WINDOW_S / 60)))


def login_refused(*, username: str, address: str) -> bool:
    """Whether this username or address has used up its failures for the current window."""
    counts = cache.get_many(_keys(username=username, address=address))
    return any(count >= settings.LABELLOOP_LOGIN_MAX_FAILURES for count in counts.values())


def login_failed(*, username: str, address: str) -> None:
    """Count one wrong password against the username and the address (the window starts at the first)."""
    for key in _keys(username=username, address=address):
        if not cache.add(key, 1, timeout=settings.LABELLOOP_LOGIN_WINDOW_S):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr: this failure starts a new window
                cache.add(key, 1, timeout=settings.LABELLOOP_LOGIN_WINDOW_S)
