"""The annotate hot loop runs a fixed, small number of SQL queries, whatever the size of the project: the
htmx page's submit → next item (one round trip) and the API's two calls (submit, then claims/next), counted
with 5 items and with 500.

Counts are per database: on PostgreSQL claims/next is one statement (the held claim or a new one:
`_claim_statement`); SQLite takes the ORM path (held claim, candidate, slot, claim: IMMEDIATE transactions).
The test runs inside a transaction, so each `atomic()` block costs a SAVEPOINT and a RELEASE here where
production pays a BEGIN and a COMMIT. Expired leases are swept at most every few seconds, not on every claim.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from annotation.annotate import services as svc
from annotation.models import Annotation, Claim, ClaimStatus
from tests.fixtures.api import api_as, next_item, submit
from tests.fixtures.people import acknowledge_guidelines, add_items

HTMX = {"HTTP_HX_REQUEST": "true"}

# htmx submit-and-next, one request: session + user (2), access_item (1: item, project and role), labels (1),
# the guideline state (1, shared by submit and next), the submission (savepoint, claim UPDATE ... RETURNING,
# annotation, draft, item count UPDATE ... RETURNING, release: 6; review routing only once the item has all
# its annotations), then the next claim: PostgreSQL one statement in a savepoint (3); SQLite held claim,
# candidate, slot and the claim's insert, each atomic block with its savepoint and release (8). A just-made claim
# needs no draft lookup.
SUBMIT_AND_NEXT_QUERIES = {"postgresql": 14, "sqlite": 19}

# API submit: token + user (1), access_item (1), labels (1), guideline state (1), the submission (6 as above).
API_SUBMIT_QUERIES = 10
# API claims/next: token + user (1), membership (1), guideline state (1), then the claim as above.
API_CLAIM_QUERIES = {"postgresql": 6, "sqlite": 11}
# claims/next while holding an item: the same, the held claim found instead (SQLite: one query), plus its draft and
# whether a reviewer sent the item back (the answer's `sent_back`).
API_HELD_QUERIES = {"postgresql": 8, "sqlite": 6}


@pytest.fixture(autouse=True)
def _swept_just_now(monkeypatch):
    """The loop as it usually runs: this process swept expired leases a moment ago."""
    monkeypatch.setattr(svc, "_sweep_due", lambda **_: False)


@pytest.mark.parametrize("size", [5, 500])
def test_submit_and_next_runs_a_constant_number_of_queries(client, project, annotator, size, django_assert_num_queries):
    add_items(project, [f"extra review {i}" for i in range(size - 5)])
    assert project.items.count() == size
    acknowledge_guidelines(project, annotator)
    client.force_login(annotator)
    client.get(reverse("annotate", args=[project.pk]))  # claims the first item, as opening the page does
    first = Claim.objects.get(annotator=annotator, status=ClaimStatus.ACTIVE).item

    with django_assert_num_queries(SUBMIT_AND_NEXT_QUERIES[connection.vendor]):
        response = client.post(reverse("annotate-submit", args=[project.pk, first.pk]), {"label": "positive"}, **HTMX)

    assert response.status_code == 200
    assert Annotation.objects.filter(item=first, annotator=annotator).exists()
    nxt = Claim.objects.get(annotator=annotator, status=ClaimStatus.ACTIVE).item
    assert nxt.pk != first.pk and nxt.text in response.content.decode()


@pytest.mark.parametrize("size", [5, 500])
def test_api_submit_and_next_run_a_constant_number_of_queries(ready, annotator, size, django_assert_num_queries):
    add_items(ready, [f"extra api {i}" for i in range(size - 5)])
    client = api_as(annotator)
    first = next_item(client, ready)

    with django_assert_num_queries(API_SUBMIT_QUERIES):
        assert submit(client, ready, first["item_id"], {"label": "positive"}).status_code == 201
    with django_assert_num_queries(API_CLAIM_QUERIES[connection.vendor]):
        second = next_item(client, ready)

    assert second["item_id"] != first["item_id"]
    assert Claim.objects.get(annotator=annotator, status=ClaimStatus.ACTIVE).item_id == second["item_id"]
    with django_assert_num_queries(API_HELD_QUERIES[connection.vendor]):
        assert next_item(client, ready)["item_id"] == second["item_id"]
