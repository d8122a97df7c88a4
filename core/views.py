"""Pages every deployment needs whatever the area: the health check a load balancer polls, the error page
that tells "the database is unreachable, try again" (503) apart from a bug (500), and the 404 of a path no route
matches (in the API's error body under /api/) or a list's page that is not there."""

from __future__ import annotations

import logging
import sys

from django.db import connection
from django.db.utils import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, HttpResponseServerError, JsonResponse
from django.template import loader
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import requires_csrf_token
from django.views.decorators.http import require_GET

from core.paging import NoSuchPage

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is unavailable for a moment; nothing was saved. Try again in a few seconds."

# Seconds a client is told to wait before retrying a request the database could not serve.
RETRY_AFTER_S = 5

API_PREFIX = "/api/"

NO_SUCH_ROUTE = (
    "No API route matches {path}: ids in paths are whole numbers, and every route is listed at /api/docs/."
)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """200 "ok" when the database answers, 503 when it does not; no login, no session, no template."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: 503 with a retry hint when the database could not be reached (the request's transaction was
    rolled back, so nothing was half-saved), else the styled 500 page. API paths answer in the API's error body."""
    exc = sys.exc_info()[1]
    unavailable = isinstance(exc, OperationalError | InterfaceError)
    if unavailable:
        log.warning("database unavailable while serving %s: %s", request.path, exc)
    is_api = request.path.startswith(API_PREFIX)
    if unavailable and is_api:
        response: HttpResponse = JsonResponse({"detail": DATABASE_UNAVAILABLE, "field": None}, status=503)
    elif unavailable:
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    elif is_api:
        return JsonResponse({"detail": "Server error.", "field": None}, status=500)
    else:
        return HttpResponseServerError(loader.get_template("500.html").render())
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: a path under /api/ that no route matches (`/api/projects/abc/`) answers the API's error body, as
    every API 404 does; pages keep the styled 404. A 404 raised inside an API class never gets here (core/api.py)."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": NO_SUCH_ROUTE.format(path=request.path), "field": None}, status=404)
    if isinstance(exception, NoSuchPage):  # a page of a list that is not there: say which, and how many there are
        return HttpResponseNotFound(loader.render_to_string("404.html", {"problem": str(exception)}, request))
    return defaults.page_not_found(request, exception)
