"""The request a signed-in page view receives, spelled out for the type checker.

Every page view sits behind `@login_required`, so its `request.user` is a `User`, never `AnonymousUser`;
and `django_htmx.middleware.HtmxMiddleware` (settings.MIDDLEWARE) sets `request.htmx` on every request.
Views annotate `request: AuthedRequest`; nothing ever constructs one.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthedRequest(HttpRequest):
    user: User
    htmx: HtmxDetails
