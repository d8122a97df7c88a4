"""Sends a browser user who still has the one-time password an owner created them with to the password change page.

The flag travels in the session (set at sign-in by `SignInView`), so ordinary pages pay no query for it.
API requests are left alone: a token works, and `GET /api/me/` says `must_change_password`.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

MUST_CHANGE_PASSWORD_SESSION_KEY = "labelloop_must_change_password"  # noqa: S105 - a session key, not a secret

# Paths a user who must change their password can still reach (besides the change page itself).
OPEN_PREFIXES = ("/api/", "/static/", "/accounts/logout/")


class PasswordChangeRequiredMiddleware:
    """settings.MIDDLEWARE, after AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.session.get(MUST_CHANGE_PASSWORD_SESSION_KEY):
            target = reverse("password_change")
            if request.path != target and not request.path.startswith(OPEN_PREFIXES):
                return redirect(target)
        return self.get_response(request)
