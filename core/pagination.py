"""The one pagination every list uses (settings.REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"])."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

# OFFSET is a bigint in PostgreSQL: a larger one is refused here rather than overflowing in the query.
MAX_OFFSET = 2**63 - 1
OFFSET_TOO_LARGE = f"offset must be at most {MAX_OFFSET}."


class Pagination(LimitOffsetPagination):
    """`?limit=&offset=` on every list: `{"count", "next", "previous", "results"}`; limit capped."""

    default_limit = settings.REST_FRAMEWORK.get("PAGE_SIZE", 100)
    max_limit = 1000

    def get_offset(self, request: Request) -> int:
        offset = super().get_offset(request)
        if offset > MAX_OFFSET:
            raise ValidationError({"offset": [OFFSET_TOO_LARGE]})
        return offset
