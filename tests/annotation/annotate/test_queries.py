"""The annotate hot loop (submit → next item, one htmx round trip) runs a fixed number of SQL queries,
whatever the size of the project: the same count with 5 items and with 500."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Annotation, Claim, ClaimStatus
from tests.fixtures.people import acknowledge_guidelines, add_items

HTMX = {"HTTP_HX_REQUEST": "true"}
# Counted on SQLite, savepoints included: session + user (2), access_item (2), labels (1), the
# guideline state (1, shared by submit and next), annotation_submit (claim, conditional updates,
# insert, review check: 9 with savepoints), claim_next (current claim, expiry check, candidate + slot
# + claim: 8 with savepoints). A just-made claim needs no draft lookup. Progress counts are not here:
# the page fetches them after the swap.
SUBMIT_AND_NEXT_QUERIES = 23


@pytest.mark.parametrize("size", [5, 500])
def test_submit_and_next_runs_a_constant_number_of_queries(client, project, annotator, size, django_assert_num_queries):
    add_items(project, [f"extra review {i}" for i in range(size - 5)])
    assert project.items.count() == size
    acknowledge_guidelines(project, annotator)
    client.force_login(annotator)
    client.get(reverse("annotate", args=[project.pk]))  # claims the first item, as opening the page does
    first = Claim.objects.get(annotator=annotator, status=ClaimStatus.ACTIVE).item

    with django_assert_num_queries(SUBMIT_AND_NEXT_QUERIES):
        response = client.post(reverse("annotate-submit", args=[project.pk, first.pk]), {"label": "positive"}, **HTMX)

    assert response.status_code == 200
    assert Annotation.objects.filter(item=first, annotator=annotator).exists()
    nxt = Claim.objects.get(annotator=annotator, status=ClaimStatus.ACTIVE).item
    assert nxt.pk != first.pk and nxt.text in response.content.decode()
