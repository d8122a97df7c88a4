"""Schemathesis over the OpenAPI schema, in process (WSGI), as the project's owner: no request gets a 500.

Every operation in /api/schema/ gets a few generated requests (valid and invalid bodies, query strings,
huge integers, odd strings), with the path's project id pinned to a real project so the requests reach the
code behind the access check. Bounded: MAX_EXAMPLES per operation, marked slow.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings

from annotation.projects.services import token_issue
from config.wsgi import application

MAX_EXAMPLES = 6

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=False)]


@pytest.fixture
def connection_kept_between_requests() -> Iterator[None]:
    """Schemathesis calls the WSGI app itself, whose request_started/finished signals close a connection that
    is inside a transaction: the test's own on PostgreSQL. Django's test client unhooks them the same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


def test_no_operation_answers_500(project, owner, connection_kept_between_requests):
    """One hypothesis run per operation; every 500 is collected, so one run reports all of them."""
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    headers = {"Authorization": f"Token {token_issue(user=owner).key}"}
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: schemathesis.Case) -> None:
            if "project_id" in case.path_parameters:
                case.path_parameters["project_id"] = project.pk
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} {case.query or ''} {str(case.body)[:200]}: "
                f"{response.status_code} {response.text[:300]}"
            )

        try:
            check()
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)
