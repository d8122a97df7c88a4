"""Per-slice figures through the product: the slice_fields setting (form and API, validated), a real run on
the tiny model storing them, the run page's tables, the run API, and the rounds page's worst slice."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Item, Project, Snapshot
from tests.fixtures.runs import FAKE_TEST_METRICS, TINY_BERT_SPEC, fake_run, run_worker
from training.ml.slices import classification_slices
from training.models import Round, RunStatus, TrainingRun
from training.runs import services


def slice_report() -> dict:
    """The constructed case of tests/training/ml/test_slices.py: "forum" all wrong (flagged), "email" tiny."""
    sources = ["web"] * 60 + ["forum"] * 40 + ["email"] * 5
    y_true = np.array([i % 2 for i in range(len(sources))])
    y_pred = np.array([t if s == "web" else 1 - t for t, s in zip(y_true, sources, strict=True)])
    return classification_slices(
        {"source": sources}, y_true=y_true, y_pred=y_pred, whole={"accuracy": 0.57, "macro_f1": 0.57},
        baseline_pred=y_true, baseline_name="logreg_embeddings",
    )


def with_metadata(project: Project) -> None:
    for index, item in enumerate(Item.objects.filter(project=project).order_by("pk")):
        item.metadata = {"source": "web" if index % 3 else "forum"}
        item.save(update_fields=["metadata"])


# --- the setting ------------------------------------------------------------------------------------


def test_the_settings_form_saves_slice_fields_and_refuses_unknown_ones_changing_nothing(sentiment, owner, client):
    project = sentiment.project
    with_metadata(project)
    client.force_login(owner)
    url = reverse("project-settings", args=[project.pk])
    base = {"overlap": project.overlap, "lease_seconds": project.lease_seconds}

    response = client.post(url, {**base, "overlap": 3, "slice_fields": "source, nope"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "No item of this project has the metadata field &#x27;nope&#x27;" in html
    project.refresh_from_db()
    assert project.slice_fields == [] and project.overlap != 3, "a refusal changes nothing"

    response = client.post(url, {**base, "slice_fields": "source, length_band, source"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.slice_fields == ["source", "length_band"]
    assert 'value="source, length_band"' in client.get(url).content.decode()

    too_many = ", ".join(f"f{i}" for i in range(11))
    assert "At most 10 slice fields" in client.post(url, {**base, "slice_fields": too_many}).content.decode()
    assert client.post(url, {**base, "slice_fields": ""}).status_code == 302
    project.refresh_from_db()
    assert project.slice_fields == []


def test_the_project_api_reads_and_sets_slice_fields(sentiment, owner, reviewer):
    project = sentiment.project
    with_metadata(project)
    api = APIClient()
    api.force_authenticate(owner)
    url = reverse("api-project-detail", args=[project.pk])
    assert api.get(url).json()["slice_fields"] == []

    refused = api.patch(url, {"slice_fields": ["group"], "overlap": 4}, format="json")
    assert refused.status_code == 400 and "'group'" in str(refused.json())
    project.refresh_from_db()
    assert project.overlap != 4 and project.slice_fields == []

    assert api.patch(url, {"slice_fields": [f"f{i}" for i in range(11)]}, format="json").status_code == 400
    done = api.patch(url, {"slice_fields": ["source", "length_band"]}, format="json")
    assert done.status_code == 200 and done.json()["slice_fields"] == ["source", "length_band"]

    api.force_authenticate(reviewer)
    assert api.patch(url, {"slice_fields": []}, format="json").status_code == 403


# --- a real run ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("tiny_models", "queues")
def test_a_run_reports_its_figures_per_slice_without_touching_the_snapshot(
    sentiment, owner, django_capture_on_commit_callbacks
):
    project = sentiment.project
    with_metadata(project)
    Project.objects.filter(pk=project.pk).update(slice_fields=["source", "length_band"])
    manifest, content_hash = sentiment.manifest, sentiment.content_hash
    with django_capture_on_commit_callbacks(execute=True):
        run = services.run_start(
            snapshot=sentiment, user=owner, spec_data=dict(TINY_BERT_SPEC),
            name="sliced",
        )
    assert run_worker()
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    test = run.metrics["test"]
    fields = {f["field"]: f["values"] for f in test["slices"]["fields"]}
    assert list(fields) == ["source", "length_band"]
    assert sum(entry["support"] for entry in fields["source"]) == test["n"]
    assert {entry["value"] for entry in fields["source"]} <= {"web", "forum"}
    assert all(re.match(r"(short|medium|long) \(", entry["value"]) for entry in fields["length_band"])
    assert all(entry["status"] == "too_small" for entry in fields["source"])  # a 5-item test split
    assert test["slices"]["baseline"] == test["comparison"]["best_baseline"]
    assert "validation_slices" in test
    snapshot = Snapshot.objects.get(pk=sentiment.pk)
    assert snapshot.content_hash == content_hash and snapshot.manifest == manifest


# --- pages and API ---------------------------------------------------------------------------------


def test_the_run_page_shows_a_table_per_field_worst_first_with_the_flag_and_its_reason(world, client):
    sliced = {"test": {**FAKE_TEST_METRICS, "slices": slice_report()}}
    TrainingRun.objects.filter(pk=world.done.pk).update(metrics=sliced)
    client.force_login(world.users["reviewer"])
    html = client.get(reverse("run-detail", args=[world.project.pk, world.done.pk])).content.decode()
    table = re.search(r'<table class="table slice-table" data-field="source">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'<tr class="slice-(\w+)"', table) == ["whole", "flagged", "ok", "too_small"]
    flagged = re.search(r'<tr class="slice-flagged".*?</tr>', table, re.S).group(0)
    assert "<td>forum</td><td>40</td>" in flagged and "Far below the whole" in flagged
    assert "macro-F1 0.000 [0.000, 0.000] is below the whole&#x27;s 0.570" in flagged
    assert "too small to tell: 5 items" in table
    assert "best baseline (Logistic regression on embeddings)" in html
    worst = re.search(r'<p class="verdict verdict-warn" id="slice-worst"[^>]*>(.*?)</p>', html).group(1)
    assert worst.startswith("Worst slice: source = forum (40 items): Macro-F1 0.000 against 0.570")


def test_runs_without_slices_show_how_to_set_them(world, client):
    client.force_login(world.users["owner"])
    url = reverse("run-detail", args=[world.project.pk, world.done.pk])
    hint = re.search(r'<p class="muted" id="slices-hint">(.*?)</p>', client.get(url).content.decode(), re.S).group(1)
    assert "No slice fields are set" in hint and "#slice-fields" in hint
    Project.objects.filter(pk=world.project.pk).update(slice_fields=["source"])
    hint = re.search(r'<p class="muted" id="slices-hint">(.*?)</p>', client.get(url).content.decode(), re.S).group(1)
    assert "evaluated before the project's slice fields (source) were set" in hint


def test_the_run_api_exposes_the_slices(world):
    sliced = {"test": {**FAKE_TEST_METRICS, "slices": slice_report()}}
    TrainingRun.objects.filter(pk=world.done.pk).update(metrics=sliced)
    api = APIClient()
    api.force_authenticate(world.users["reviewer"])
    body = api.get(reverse("api-run-detail", kwargs={"project_id": world.project.pk, "run_id": world.done.pk})).json()
    slices = body["metrics"]["test"]["slices"]
    assert slices["worst"]["value"] == "forum" and slices["flagged"] == 1
    assert slices["fields"][0]["values"][0]["intervals"]["macro_f1"] == [0.0, 0.0]


def test_the_rounds_page_tracks_the_worst_slice_of_each_rounds_run(world, client):
    project, owner = world.project, world.users["owner"]
    first = fake_run(world.snapshot, owner, status=RunStatus.SUCCEEDED,
                     metrics={"test": {**FAKE_TEST_METRICS, "slices": slice_report()}})
    calm = {**slice_report(), "worst": None, "flagged": 0}
    second = fake_run(world.snapshot, owner, status=RunStatus.SUCCEEDED,
                      metrics={"test": {**FAKE_TEST_METRICS, "slices": calm}})
    for number, run in ((1, first), (2, second)):
        round_ = Round.objects.create(project=project, number=number, closed_at=timezone.now(), closed_by=owner,
                                      figures={"best_run": run.pk})
        round_.runs.add(run, world.done)
    client.force_login(world.users["reviewer"])
    html = client.get(reverse("round-list", args=[project.pk])).content.decode()
    cells = re.findall(r'<td class="worst-slice">(.*?)</td>', html, re.S)
    assert "source = forum" in cells[0] and "macro-F1 0.000" in cells[0] and "vs 0.570 whole" in cells[0]
    assert f"run #{first.pk}" in cells[0]
    assert "none flagged" in cells[1] and f"run #{second.pk}" in cells[1]
    assert "rounds-slices-hint" not in html

    api = APIClient()
    api.force_authenticate(world.users["reviewer"])
    listed = api.get(reverse("api-round-list", args=[project.pk])).json()["results"]
    assert listed[0]["worst_slice"]["value"] == "forum" and listed[0]["worst_slice"]["run"] == first.pk
    assert listed[1]["worst_slice"] == {"run": second.pk, "flagged": 0}
    assert listed[2]["worst_slice"] is None  # the open round


def test_the_rounds_page_says_how_to_get_slices_when_no_run_has_them(world, client):
    client.force_login(world.users["owner"])
    html = client.get(reverse("round-list", args=[world.project.pk])).content.decode()
    hint = re.search(r'<p class="muted small" id="rounds-slices-hint">(.*?)</p>', html, re.S).group(1)
    assert "project settings" in hint
