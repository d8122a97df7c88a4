"""The one pagination every list uses (settings.REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"])."""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """`?limit=&offset=` on every list: `{"count", "next", "previous", "results"}`; limit capped."""

    default_limit = settings.REST_FRAMEWORK.get("PAGE_SIZE", 100)
    max_limit = 1000
