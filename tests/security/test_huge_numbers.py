"""Huge integers in paths, query strings and bodies are a clear 400 (API) or 404 (page), never a 500."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.fixtures.api import api_as, url
from training.spec import ERROR_AT_MOST, TASK_CLASSIFICATION, WHOLE_MAX, TrainingSpec

HUGE = 2**70
TWENTY_FIVE_DIGITS = "1" * 25


def test_a_snapshot_seed_of_2_to_the_70_is_a_400(project, owner):
    response = api_as(owner).post(url("api-snapshot-list", project), {"name": "x", "seed": HUGE}, format="json")
    assert (response.status_code, response.data["field"]) == (400, "seed")


def test_a_noise_scan_seed_of_2_to_the_70_is_a_400(project, owner):
    response = api_as(owner).post(url("api-noise-scan-list", project), {"seed": HUGE}, format="json")
    assert (response.status_code, response.data["field"]) == (400, "seed")


def test_an_offset_beyond_a_bigint_is_an_empty_page(project, owner):
    """Past the count, the paginator answers without a query, so the offset never reaches the database."""
    response = api_as(owner).get(url("api-snapshot-list", project), {"offset": "9" * 20})
    assert response.status_code == 200 and response.data["results"] == []


def test_a_training_spec_with_a_huge_seed_names_the_field():
    errors = TrainingSpec(task=TASK_CLASSIFICATION, base_model="minilm", seed=HUGE).errors()
    assert errors["seed"] == ERROR_AT_MOST.format(maximum=WHOLE_MAX)


@pytest.mark.parametrize("route", ["project-detail", "import-page", "annotate", "review-queue", "snapshot-list"])
def test_a_page_with_a_25_digit_id_is_a_404(client, owner, route):
    client.force_login(owner)
    path = reverse(route, args=[1]).replace("/1/", f"/{TWENTY_FIVE_DIGITS}/", 1)
    assert client.get(path).status_code == 404


def test_an_api_path_with_a_25_digit_id_is_a_400(owner):
    response = api_as(owner).get(f"/api/projects/{TWENTY_FIVE_DIGITS}/")
    assert response.status_code == 400
