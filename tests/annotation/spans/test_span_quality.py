"""The quality page and API for span projects: span agreement figures; noise scans said plainly not offered."""

from __future__ import annotations

import pytest

from annotation.quality.services import NOT_FOR_SPANS
from tests.fixtures.api import api_as
from tests.fixtures.pages import url
from tests.fixtures.span_loop import annotate_all
from tests.fixtures.spans import span_project


@pytest.fixture
def annotated(owner, annotator, annotator2, reviewer):
    project = span_project(owner, [annotator, annotator2], reviewer)
    annotate_all(project, annotator, {"Ada": [("Ada Lovelace", "PER"), ("London", "LOC")], "😀": [("Paris", "LOC")]})
    annotate_all(project, annotator2, {"Ada": [("Ada", "PER"), ("London", "LOC")], "😀": [("Paris", "LOC")]})
    return project


def test_the_quality_api_reports_span_agreement_per_label(annotated, owner):
    report = api_as(owner).get(f"/api/projects/{annotated.pk}/quality/").json()
    spans = report["spans"]
    # exact: London and Paris match, Ada Lovelace vs Ada do not: 2·2/6
    assert spans["n_items"] == 3 and spans["exact_f1"] == pytest.approx(4 / 6)
    # tokens: a = {Ada, Lovelace, London, Paris}, b = {Ada, London, Paris} → 2·3/7
    assert spans["token_f1"] == pytest.approx(6 / 7)
    per = {row["label"]: row for row in spans["per_label"]}
    assert per["LOC"]["exact_f1"] == 1.0 and per["PER"]["exact_f1"] == 0.0
    assert report["per_label"] == [] and report["confusion"] == []


def test_the_quality_page_shows_the_table_and_says_noise_scans_are_not_offered(client, annotated, owner):
    client.force_login(owner)
    page = client.get(url("quality", annotated.pk)).content.decode()
    assert 'id="span-agreement-table"' in page and "Token-level F1" in page
    assert "Noise scans are not offered for span projects" in page and "Not yet." not in page


def test_the_noise_scan_api_refuses_span_projects(annotated, owner):
    response = api_as(owner).post(f"/api/projects/{annotated.pk}/noise-scans/", {}, format="json")
    assert response.status_code == 400 and response.json()["detail"] == NOT_FOR_SPANS
