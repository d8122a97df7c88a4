"""Explanations of a span run's outputs: "Why?" on the run page, the job attributing each predicted span to the
words (integrated gradients of the span's tag log-odds), the page drawing them, the API, the cache and who may ask.

    route                                         owner  annotator  reviewer  outsider  anonymous
    GET  explanation-page                          200     403        200       404       302
    POST explanation-page                          302     403        302       404       302
    GET  api-output-explanation (once asked)       200     403        200       404       401
    POST api-output-explanation                    202     403        202       404       401
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from annotation.datasets.services import snapshot_create
from annotation.imports import services as imports
from annotation.models import LabelsAs, Role, TaskType
from annotation.projects.services import membership_set, project_create
from tests.fixtures.people import add_items
from tests.training.explanations.test_explanations import EXPECTED, ROLES, drain, quality_queue, url  # noqa: F401
from tests.training.ml.test_spans import rows
from tests.training.test_span_training import conll
from training.explanations import selectors
from training.models import Explanation, ExplanationStatus, ModelOutput, RunStatus, TrainingRun
from training.spec import TrainingSpec

TEXT = "the alice in paris good"
SPAN_SPEC = {"task": "spans", "base_model": "tiny-bert", "method": "lora", "epochs": 30, "learning_rate": 0.01,
             "max_length": 32}


@pytest.fixture(autouse=True)
def _fresh_predictors():
    from training.runs import serving

    serving._predictors.clear()
    yield
    serving._predictors.clear()


@pytest.fixture(scope="session")
def tiny_span_artifact(one_torch_thread, tiny_bert, tmp_path_factory) -> Path:
    """A real saved span tagger (tiny BERT + LoRA, PER/LOC), trained once for the session."""
    from training.ml.spans import SpanRecipe, SpanTrainingConfig

    config = SpanTrainingConfig(base_model_dir=str(tiny_bert), labels=("PER", "LOC"), epochs=30, learning_rate=1e-2)
    recipe = SpanRecipe(config)
    recipe.setup()
    recipe.train(rows(64, seed=1))
    return recipe.save(tmp_path_factory.mktemp("tiny-span-artifact") / "artifact")


@pytest.fixture
def users(owner, annotator, reviewer, outsider) -> dict:
    return {"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider}


@pytest.fixture
def span_output(tiny_models, tiny_span_artifact, users) -> ModelOutput:
    """A succeeded span run of a PER/LOC project with its model, and its real output on an item."""
    from training.runs import serving

    owner = users["owner"]
    project = project_create(owner=owner, name="NER", task_type=TaskType.SPANS, labels=["PER", "LOC"], overlap=1)
    membership_set(project=project, user=users["annotator"], role=Role.ANNOTATOR)
    membership_set(project=project, user=users["reviewer"], role=Role.REVIEWER)
    imports.import_create(
        project=project, user=owner, file_name="ner.conll", fileobj=io.BytesIO(conll(8)), labels_as=LabelsAs.FINAL
    )
    snapshot = snapshot_create(project=project, user=owner, name="v1", allow_small_test=True)
    spec = TrainingSpec.from_dict(SPAN_SPEC)
    run = TrainingRun.objects.create(
        project=project, snapshot=snapshot, snapshot_hash=snapshot.content_hash, task="spans",
        base_model="tiny-bert", spec=spec.to_dict(), created_by=owner, status=RunStatus.SUCCEEDED,
        progress={"step": 120, "total_steps": 120, "phase": "done"},
    )
    shutil.copytree(tiny_span_artifact, Path(settings.MEDIA_ROOT) / "runs" / str(run.pk) / "artifact")
    TrainingRun.objects.filter(pk=run.pk).update(artifact_dir=f"runs/{run.pk}/artifact")
    run.refresh_from_db()
    (item,) = add_items(project, [TEXT])
    (prediction,) = serving.predict(run, [TEXT])
    return ModelOutput.objects.create(
        run=run, item=item, value={"spans": prediction["spans"]}, confidence=prediction["confidence"],
        uncertainty=1 - prediction["confidence"],
    )


@pytest.mark.parametrize("role", ROLES)
def test_who_may_see_and_ask_for_a_span_explanation(
    span_output, users, client, role, quality_queue, django_capture_on_commit_callbacks  # noqa: F811
):
    """As for classification: annotators never see model outputs' explanations, outsiders learn nothing."""
    Explanation.objects.create(run=span_output.run, text_hash=selectors.explanation_key(span_output),
                               item=span_output.item, method="span_integrated_gradients",
                               requested_by=users["owner"], status=ExplanationStatus.FAILED, error="boom")
    if role != "anonymous":
        client.force_login(users[role])
    with django_capture_on_commit_callbacks(execute=True):
        got = (
            client.get(url(span_output)).status_code,
            client.post(url(span_output)).status_code,
            client.get(url(span_output, "api-output-explanation")).status_code,
            client.post(url(span_output, "api-output-explanation")).status_code,
        )
    assert got == EXPECTED[role]
    if EXPECTED[role][3] != 202:
        assert Explanation.objects.get().status == ExplanationStatus.FAILED and quality_queue.count == 0


@pytest.mark.slow
def test_why_on_a_span_run_explains_each_span_in_the_worker_the_page_and_the_api(
    span_output, users, client, quality_queue, django_capture_on_commit_callbacks  # noqa: F811
):
    run = span_output.run
    predicted = span_output.value["spans"]
    assert {(TEXT[s["start"] : s["end"]], s["label"]) for s in predicted} == {("alice", "PER"), ("paris", "LOC")}
    client.force_login(users["reviewer"])
    run_page = client.get(reverse("run-detail", args=[run.project_id, run.pk])).content.decode()
    assert f'href="{url(span_output)}">Why?</a>' in run_page
    page = client.get(url(span_output)).content.decode()
    assert 'id="explain-button"' in page and "Which words made the model find each span?" in page
    assert 'id="span-count">2</span> spans' in page and "Rate this output" in page
    rating = client.get(reverse("rating-page", args=[run.project_id, run.pk]), {"output": span_output.pk})
    assert f'href="{url(span_output)}" target="_blank" rel="noopener" id="explain-link">Why did the model find' in (
        rating.content.decode()
    )

    with django_capture_on_commit_callbacks(execute=True):
        fragment = client.post(url(span_output), headers={"HX-Request": "true"}).content.decode()
    explanation = Explanation.objects.get()
    assert explanation.status == ExplanationStatus.QUEUED and explanation.method == "span_integrated_gradients"
    assert 'hx-trigger="every 2s"' in fragment
    assert drain()
    explanation.refresh_from_db()
    assert explanation.status == ExplanationStatus.SUCCEEDED, explanation.error
    result = explanation.result
    assert [(s["start"], s["end"], s["label"]) for s in result["spans"]] == [
        (s["start"], s["end"], s["label"]) for s in predicted
    ]
    for span in result["spans"]:  # completeness, per span
        assert span["converged"]
        assert span["attribution_sum"] == pytest.approx(span["score"] - span["baseline_score"], abs=span["tolerance"])

    html = client.get(url(span_output)).content.decode()
    assert "hx-trigger" not in html
    marks = re.findall(r'<mark class="span-mark">([^<]+)<span class="span-label">([A-Z]+)</span></mark>', html)
    assert marks == [("alice", "PER"), ("paris", "LOC")]
    assert html.count('<details class="span-why"') == 2 and 'id="span-why-1" open' in html
    for word, label in marks:
        assert f"Why <strong>“{word}”</strong> is <span class=\"value\">{label}</span>" in html
    words = re.findall(r'<span class="w w-(?:for|against)(?: strong)?( in-span)?" style="--a: [0-9.]+" '
                       r'title="([^"]+)" tabindex="0" data-score="[-0-9.]+">([^<]+)</span>', html)
    assert [word for _, _, word in words] == TEXT.split() * 2  # every word, once per span
    assert [word for in_span, _, word in words if in_span] == ["alice", "paris"]  # each span's own word outlined
    assert all(f"for “{w}”" in title for (_, title, _), w in zip(words, ["alice"] * 5 + ["paris"] * 5, strict=True))
    assert html.count("integration steps, within the tolerance") == 2 and "rough" not in html

    client.force_login(users["owner"])
    api = client.post(url(span_output, "api-output-explanation"))
    assert api.status_code == 200 and api.json()["result"]["spans"] == result["spans"]  # from the cache
    assert client.get(url(span_output, "api-output-explanation")).json()["method"] == "span_integrated_gradients"
    assert quality_queue.count == 0 and Explanation.objects.count() == 1


def test_a_span_explanation_that_did_not_converge_says_to_read_it_as_rough(span_output, users, client):
    span = {"start": 4, "end": 9, "label": "PER", "text": "alice", "tags": ["B-PER"], "probability": 0.9,
            "score": 2.0, "baseline_score": -1.0, "delta": 0.4, "tolerance": 0.2, "converged": False,
            "attribution_sum": 3.4,
            "segments": [{"text": "the", "score": 0.4}, {"text": " ", "score": None}, {"text": "alice", "score": 3.0},
                         {"text": " in paris good", "score": None}]}
    Explanation.objects.create(
        run=span_output.run, text_hash=selectors.explanation_key(span_output), item=span_output.item,
        method="span_integrated_gradients", requested_by=users["owner"], status=ExplanationStatus.SUCCEEDED,
        result={"method": "span_integrated_gradients", "steps": 512, "converged": False, "spans": [span],
                "explained_chars": len(TEXT), "text_chars": len(TEXT), "truncated": False},
    )
    client.force_login(users["owner"])
    html = client.get(url(span_output)).content.decode()
    assert "<strong class=\"error\">· rough</strong>" in html
    assert "more than the tolerance of 0.200: read these values as rough" in html
    assert "a change of 3.000. They differ by 0.400 after 512 integration steps" in html
