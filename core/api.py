"""The API's shared machinery: the base class, one error body, pagination, allow-listed filters, schema names.

Every API class answers errors in one shape, `{"detail": message, "field": field-or-null}` (plus `errors`,
every invalid field, when the input had several), whatever raised them: a service's `ServiceError`, a
serializer, a filter, DRF itself (401, 403, 404, 405, 415, a parse error) or Django's `Http404`. A path under /api/
that no route matches never reaches an API class: handler404 (core/views.py) answers it in the same body.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ServiceError
from core.pagination import Pagination
from core.streaming import JSONL_MEDIA_TYPE

UNKNOWN_FILTER = "{name!r} is not a query parameter here; use one of: {allowed}."
NO_QUERY = "{name!r} is not a query parameter here: this takes none (but format)."
BAD_FILTER_VALUE = "{value!r} is not a valid value: {reason}"
ID_TOO_LARGE = "{value} is not an id: ids are whole numbers up to {largest}."
REPEATED_FILTER = "{name!r} was given {count} times: give it once (a filter takes one value)."

# The largest id a table holds (BigAutoField): a larger one in a path or a body is refused with 400, never passed
# to a query (SQLite and PostgreSQL overflow on it); use `max_value=ID_MAX` on serializer id fields.
ID_MAX = 2**63 - 1
# The largest seed a model's IntegerField stores (a split or a noise scan seed): use `max_value=SEED_MAX`.
SEED_MAX = 2**31 - 1


class ApiSchema(AutoSchema):
    """Names components and operations after the API class they belong to.

    Every API nests classes called InputSerializer/OutputSerializer; without this they would all be one
    `Input` component and the schema would be wrong (`LabelCreateApi.InputSerializer` → `LabelCreateInput`).
    """

    def get_serializer_name(self, serializer: serializers.BaseSerializer, direction: str) -> str:
        parts = type(serializer).__qualname__.split(".")
        return "".join(part.removesuffix("Api").removesuffix("Serializer") for part in parts)

    def get_operation_id(self) -> str:
        """The API's own name and method (`LabelListApi` GET → `label_list`, POST → `label_list_create`)."""
        base = re.sub(r"(?<!^)(?=[A-Z])", "_", type(self.view).__name__.removesuffix("Api")).lower()
        methods = [m for m in ("get", "post", "put", "patch", "delete") if hasattr(self.view, m)]
        verb = {"get": "", "post": "_create", "put": "_replace", "patch": "_update", "delete": "_delete"}
        return base if len(methods) == 1 else base + verb[self.method.lower()]


class QueuePlaceSerializer(serializers.Serializer):
    """Where a queued job stands in its RQ queue (core/queues.py); null once the job left "queued"."""

    name = serializers.CharField(help_text="the RQ queue: training, imports, quality or default")
    state = serializers.ChoiceField(
        choices=["waiting", "starting", "scheduled", "missing", "unreachable"],
        help_text="waiting: in the queue, `position` jobs ahead of it; missing: no longer in Redis (queued again soon)",
    )
    position = serializers.IntegerField(allow_null=True, help_text="jobs ahead of it in the queue (0: next)")
    workers = serializers.IntegerField(allow_null=True, help_text="workers serving the queue now")
    busy = serializers.IntegerField(
        allow_null=True, help_text="while it is next (position 0): how many of those workers are busy with a job"
    )
    message = serializers.CharField(
        help_text='what the page shows, e.g. "Queued — 2 jobs ahead of it in the training queue", or while it is '
        'next "Queued — next in the training queue; its worker is busy with another job, and it starts when that '
        'ends"'
    )


class ErrorSerializer(serializers.Serializer):
    """What every refusal looks like; `errors` lists every invalid field when the input had several."""

    detail = serializers.CharField()
    field = serializers.CharField(allow_null=True, required=False)
    # DRF's metaclass moves declared fields into `_declared_fields`, so this does not shadow `Serializer.errors`;
    # the stub cannot know that.
    errors = serializers.JSONField(required=False)  # type: ignore[assignment]


def _first_error(detail: Any, field: str | None = None) -> tuple[str | None, str]:
    """The first (field path, message) of a DRF validation error, e.g. ("labels.1", "This field ...")."""
    if not detail:
        return field, "Invalid input."
    if isinstance(detail, Mapping):
        key, value = next(iter(detail.items()))
        path = None if key == "non_field_errors" else f"{field}.{key}" if field else str(key)
        return _first_error(value, path)
    if isinstance(detail, list):
        return _first_error(detail[0], field)
    return field, str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """settings.REST_FRAMEWORK["EXCEPTION_HANDLER"]: every API error in the one body above."""
    if isinstance(exc, ServiceError):
        body: dict[str, Any] = {"detail": exc.message, "field": exc.field}
        errors = getattr(exc, "errors", None)  # a service that checks several fields at once names every one
        if errors:
            body["errors"] = errors
        return Response(body, status=exc.status_code)
    if isinstance(exc, ValidationError):
        field, message = _first_error(exc.detail)
        return Response({"detail": message, "field": field, "errors": exc.detail}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, Mapping) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"]), "field": None}
    return response


UNKNOWN_FIELD = "Unknown field: this request takes {fields}."
READ_ONLY_FIELD = "{name} cannot be changed here: {why}."


NOT_A_NUMBER = "A number is required, not {value}."


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    """The serializer's validated data, or a 400 naming the first invalid field.

    Stricter than DRF in two ways a client's mistake would otherwise pass unnoticed: a field the request does not
    take is refused (it was silently dropped: `audit_rate` sent on create kept the default), and JSON true/false is
    not a number (DRF's FloatField reads true as 1.0: a routing budget of `true` became 1). A field the answer shows
    but this request cannot change is refused saying why, from the serializer's `READ_ONLY` {name: why}, where it
    has one (`review_all` read back from a project and sent again was called unknown).
    """
    serializer = serializer_class(data=data, **kwargs)
    if isinstance(data, Mapping):
        fields = {name: field for name, field in serializer.fields.items() if not field.read_only}
        unknown = sorted(str(name) for name in data if name not in fields)
        fixed: Mapping[str, str] = getattr(serializer_class, "READ_ONLY", {})
        for name in unknown:
            if name in fixed:
                raise serializers.ValidationError({name: [READ_ONLY_FIELD.format(name=name, why=fixed[name])]})
        if unknown:
            raise serializers.ValidationError({unknown[0]: [UNKNOWN_FIELD.format(fields=", ".join(fields))]})
        numbers = (serializers.FloatField, serializers.IntegerField, serializers.DecimalField)
        for name, field in fields.items():
            if isinstance(field, numbers) and isinstance(data.get(name), bool):
                raise serializers.ValidationError({name: [NOT_A_NUMBER.format(value=str(data[name]).lower())]})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Pagination --------------------------------------------------------------------------------------


_page_serializers: dict[type, type[serializers.Serializer]] = {}


def paginated(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of one page of `serializer_class` rows (for `extend_schema(responses=...)`)."""
    if serializer_class not in _page_serializers:
        name = serializer_class.__qualname__.replace(".", "") + "Page"
        _page_serializers[serializer_class] = type(
            name,
            (serializers.Serializer,),
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": serializer_class(many=True),
                "__qualname__": name,
                "__module__": serializer_class.__module__,
            },
        )
    return _page_serializers[serializer_class]


PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="Rows per page (default 100, at most 1000)."),
    OpenApiParameter("offset", int, description="Rows to skip."),
]


# --- Filters ---------------------------------------------------------------------------------------

Parser = Callable[[str], Any]


def choice(values: Sequence[str]) -> Parser:
    def parse(raw: str) -> str:
        if raw not in values:
            raise ValueError(f"use one of: {', '.join(values)}")
        return raw

    return parse


def boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError("use true or false")


def whole_number(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError("use a whole number")
    return int(raw)


def number(raw: str) -> float:
    """A finite decimal number (e.g. a confidence bound)."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("use a number") from None
    if not math.isfinite(value):
        raise ValueError("use a finite number")
    return value


PAGE_LIMIT_EXPECTED = "use a whole number from 1 (more than {largest} is capped to {largest})"


def page_limit(raw: str) -> int:
    """Rows per page: a whole number from 1; more than the pagination's maximum is capped to it, as DRF does (so a
    limit of any size is taken, and `-1` or `0` is told the lower bound rather than "use a whole number")."""
    digits = raw.lstrip("0")  # leading zeros count for nothing ("0005" is 5), however many there are
    if not (raw.isascii() and raw.isdigit()) or not digits:
        raise ValueError(PAGE_LIMIT_EXPECTED.format(largest=Pagination.max_limit))
    return min(int(digits), Pagination.max_limit) if len(digits) <= 18 else Pagination.max_limit


def page_offset(raw: str) -> str:
    """Rows to skip: a whole number from 0, of any size (past the count the page is empty, without a query)."""
    if not raw.isdigit():
        raise ValueError("use a whole number from 0")
    return raw


# How `limit` and `offset` are read on every list (DRF's LimitOffsetPagination quietly took the default for a bad
# one: a client asking for `limit=abc` or `offset=-5` got the first page and no sign of its mistake).
PAGING: Mapping[str, Parser] = {"limit": page_limit, "offset": page_offset}


def text(raw: str) -> str:
    if len(raw) > 200:
        raise ValueError("at most 200 characters")
    return raw


def moment(raw: str) -> dt.datetime:
    """An ISO 8601 date or date-time (`2025-01-31` or `2025-01-31T12:00:00Z`); naive ones are in the site's zone."""
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError as exc:
        raise ValueError("use an ISO 8601 date or date-time, e.g. 2025-01-31T12:00:00Z") from exc
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class ApiView(APIView):
    """Base of every API: one error body (see the handler above), distinct schema names, pagination.

    `filters` is the allow-list of query parameters a list accepts, each with its parser; anything else (other than
    limit, offset and format) is refused with a 400 naming it, so no request data reaches a query unparsed. A read
    that takes no query refuses any but format (`finalize_response`). A parameter given twice
    (`?reason=audit&reason=noise`) is refused too: a filter takes one value, and reading only the last one would drop
    the others without a word.
    """

    schema = ApiSchema()
    pagination_class = Pagination
    filters: Mapping[str, Parser] = {}
    query_checked = True  # False from `initial` until filter_values ran (a request refused before it is not checked)

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return exception_handler

    @property
    def user(self) -> User:
        """The signed-in caller. Every API requires IsAuthenticated (settings.REST_FRAMEWORK), checked in
        `initial()` before any handler runs, so here `request.user` is a `User`, never `AnonymousUser`."""
        user = self.request.user
        if not isinstance(user, User):
            raise NotAuthenticated
        return user

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """After authentication (so anonymous callers still get 401): an id in the path beyond ID_MAX is a 400."""
        super().initial(request, *args, **kwargs)
        for name, value in kwargs.items():
            if isinstance(value, int) and value > ID_MAX:
                raise ServiceError(ID_TOO_LARGE.format(value=value, largest=ID_MAX), field=name)
        self.query_checked = False  # set by filter_values; a read that never called it is checked after its handler

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        """A read whose handler took no query (a report, a detail) refuses one it was given, naming it: `?view=all`
        on the quality report was answered as if it had filtered. Checked after the handler, so the caller learns of
        a missing project or role (404, 403) first, as from a list, whose handler checks its filters itself."""
        if request.method in ("GET", "HEAD") and response.status_code < 400 and not self.query_checked:
            extra = [name for name in request.query_params if name != "format"]
            if extra:
                response = self.handle_exception(ServiceError(NO_QUERY.format(name=extra[0]), field=extra[0]))
        return super().finalize_response(request, response, *args, **kwargs)

    def filter_values(self, request: Request) -> dict[str, Any]:
        """The list's filters parsed ({name: value}), after a 400 naming any parameter it does not take."""
        self.query_checked = True
        allowed = {**self.filters, **PAGING, "format": str}
        values: dict[str, Any] = {}
        self.paging_checked(request)
        for name in request.query_params:
            if name not in allowed:
                names = ", ".join([*sorted(self.filters), *PAGING])
                raise ServiceError(UNKNOWN_FILTER.format(name=name, allowed=names), field=name)
            raw = self.single_value(request, name)
            if name in self.filters:
                try:
                    values[name] = self.filters[name](raw)
                except ValueError as exc:
                    raise ServiceError(BAD_FILTER_VALUE.format(value=raw, reason=exc), field=name) from exc
        return values

    @staticmethod
    def single_value(request: Request, name: str) -> str:
        """The one value of query parameter `name`, or a 400 naming it when it was given more than once."""
        given = request.query_params.getlist(name)
        if len(given) > 1:
            raise ServiceError(REPEATED_FILTER.format(name=name, count=len(given)), field=name)
        return given[0] if given else ""

    def paging_checked(self, request: Request) -> None:
        """A 400 naming `limit` or `offset` when either is not a whole number in range (PAGING)."""
        for name, parse in PAGING.items():
            if name in request.query_params:
                raw = self.single_value(request, name)
                try:
                    parse(raw)
                except ValueError as exc:
                    raise ServiceError(BAD_FILTER_VALUE.format(value=raw, reason=exc), field=name) from exc

    def page(
        self,
        request: Request,
        rows: QuerySet | Sequence[Any],
        serializer_class: type[serializers.Serializer],
        *,
        context: Mapping[str, Any] | None = None,
        complete: Callable[[list[Any]], Sequence[Any]] | None = None,
    ) -> Response:
        """One page of `rows`, serialized (with `context` when the serializer needs one): every list's answer.

        `complete` turns the page's rows into what the serializer reads (e.g. fetches their children in one
        query), so that work is done for one page only, never for the whole list.
        """
        if not self.query_checked:  # a list that read no filter still refuses one it does not take
            self.filter_values(request)
        paginator = self.pagination_class()
        try:
            # DRF slices any sequence; the stub only admits a QuerySet.
            chunk = paginator.paginate_queryset(rows, request, view=self)  # type: ignore[arg-type]
        except Exception as exc:
            raise ServiceError(str(exc), field="offset") from exc
        page_rows = list(chunk or [])
        shown = complete(page_rows) if complete is not None else page_rows
        data = serializer_class(shown, many=True, context=dict(context or {})).data
        return paginator.get_paginated_response(data)


# What an anonymous caller (401), a member with the wrong role (403) or an outsider (404) gets.
DENIED = {401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}
REFUSED = {400: ErrorSerializer, **DENIED}
CONFLICT = {409: ErrorSerializer}


def jsonl_export_responses(description: str) -> dict:
    """The schema of a streamed JSON Lines export: what one line holds, and the usual refusals."""
    return {(200, JSONL_MEDIA_TYPE): OpenApiResponse(response=OpenApiTypes.STR, description=description), **REFUSED}
