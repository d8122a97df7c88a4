"""Explanations end to end: who may reach them, asking for one (cached per run and text), the worker computing
it, the page drawing it, failures and lost jobs.

    route                                         owner  annotator  reviewer  outsider  anonymous
    GET  explanation-page                          200     403        200       404       302
    POST explanation-page                          302     403        302       404       302
    GET  api-output-explanation (once asked)       200     403        200       404       401
    POST api-output-explanation                    202     403        202       404       401
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from django.urls import reverse

from core.queues import JsonSimpleWorker
from tests.fixtures.people import add_items
from tests.fixtures.runs import TINY_LLAMA_SPEC, fake_run
from tests.fixtures.tiny_models import qa_rows
from training.explanations import selectors, services
from training.models import Explanation, ExplanationStatus, ModelOutput, RunStatus, TrainingRun

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
# Per role: (GET page, POST page, GET API, POST API), as in the table above.
EXPECTED = {
    "owner": (200, 302, 200, 202),
    "annotator": (403, 403, 403, 403),
    "reviewer": (200, 302, 200, 202),
    "outsider": (404, 404, 404, 404),
    "anonymous": (302, 302, 401, 401),
}


@pytest.fixture(autouse=True)
def _fresh_predictors():
    """Run ids restart in every test: a model cached under run 1 must not answer for the next test's run 1."""
    from training.runs import serving

    serving._predictors.clear()
    yield
    serving._predictors.clear()


@pytest.fixture
def quality_queue():
    queue = django_rq.get_queue(selectors.EXPLANATIONS_QUEUE)
    queue.empty()
    yield queue
    queue.empty()


def drain() -> bool:
    return django_rq.get_worker(selectors.EXPLANATIONS_QUEUE, worker_class=JsonSimpleWorker).work(burst=True)


def output_for(run: TrainingRun, text: str) -> ModelOutput:
    """A real prediction of the run's model on an item of its project with this text."""
    from training.runs import serving

    item = run.project.items.filter(text=text).first() or add_items(run.project, [text])[0]
    (prediction,) = serving.predict(run, [text])
    value = {"label": prediction["label"]} if "label" in prediction else {"response": prediction["response"]}
    return ModelOutput.objects.create(run=run, item=item, value=value, probabilities=prediction.get("probabilities"),
                                      confidence=prediction.get("confidence"))


@pytest.fixture
def output(world) -> ModelOutput:
    return output_for(world.done, "the acting was great and the plot was lovely")


def url(output: ModelOutput, name: str = "explanation-page") -> str:
    return reverse(name, args=[output.run.project_id, output.run_id, output.pk])


# --- who may reach it ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_page_and_api_status_per_role(world, output, client, role, quality_queue, django_capture_on_commit_callbacks):
    expected = EXPECTED[role]
    Explanation.objects.create(run=world.done, text_hash=selectors.explanation_key(output), item=output.item,
                               method="integrated_gradients", requested_by=world.users["owner"],
                               status=ExplanationStatus.FAILED, error="boom")
    if role != "anonymous":
        client.force_login(world.users[role])
    with django_capture_on_commit_callbacks(execute=True):
        got = (
            client.get(url(output)).status_code,
            client.post(url(output)).status_code,
            client.get(url(output, "api-output-explanation")).status_code,
            client.post(url(output, "api-output-explanation")).status_code,
        )
    if expected[3] != 202:  # a refused POST changes nothing
        assert Explanation.objects.get().status == ExplanationStatus.FAILED
    assert got == expected


def test_the_table_above_is_the_matrix():
    rows = [line.split() for line in __doc__.splitlines() if line.strip().split(" ")[0] in ("GET", "POST")]
    assert [tuple(int(c) for c in cells[-5:]) for cells in rows] == [
        tuple(column) for column in zip(*(EXPECTED[role] for role in ROLES), strict=True)
    ]


def test_another_runs_output_is_404(world, output, client):
    other = fake_run(world.snapshot, world.users["owner"], status=RunStatus.SUCCEEDED)
    client.force_login(world.users["owner"])
    assert client.get(reverse("explanation-page", args=[world.project.pk, other.pk, output.pk])).status_code == 404


# --- end to end ---------------------------------------------------------------------------------------------------

def test_explain_runs_in_the_worker_and_the_page_highlights_the_words(
    world, output, client, quality_queue, django_capture_on_commit_callbacks
):
    client.force_login(world.users["reviewer"])
    page = client.get(url(output)).content.decode()
    assert 'id="explain-button"' in page and 'id="plain-text"' in page

    with django_capture_on_commit_callbacks(execute=True):
        fragment = client.post(url(output), headers={"HX-Request": "true"}).content.decode()
    explanation = Explanation.objects.get()
    assert explanation.status == ExplanationStatus.QUEUED and explanation.method == "integrated_gradients"
    assert 'hx-trigger="every 2s"' in fragment and "Queued" in fragment  # it polls while it waits
    assert quality_queue.fetch_job(selectors.explanation_job_id(explanation.pk)) is not None

    assert drain()
    explanation.refresh_from_db()
    assert explanation.status == ExplanationStatus.SUCCEEDED, explanation.error
    result = explanation.result
    assert result["label"] == output.value["label"]
    assert result["probability"] == pytest.approx(output.confidence, abs=1e-5)
    assert result["converged"] is True

    html = client.get(url(output)).content.decode()
    assert "hx-trigger" not in html  # done: no more polling
    assert 'id="predicted-label">' + output.value["label"] in html
    spans = re.findall(r'<span class="w w-(for|against)(?: strong)?" style="--a: ([0-9.]+)" title="([^"]+)" '
                       r'tabindex="0" data-score="[-0-9.]+">([^<]+)</span>', html)
    assert [word for *_, word in spans] == output.item.text.split()
    assert max(float(alpha) for _, alpha, _, _ in spans) == pytest.approx(selectors.MAX_ALPHA)
    assert all("log-odds" in title for _, _, title, _ in spans)
    assert 'class="legend"' in html and 'id="top-words"' in html and 'id="explain-check"' in html
    assert 'id="explain-truncated"' not in html and "read these values as rough" not in html
    assert f"after {result['steps']} integration steps, within the tolerance" in html

    # The API gives the same result; asking again is answered from the cache, and nothing is queued.
    client.force_login(world.users["owner"])
    api = client.post(url(output, "api-output-explanation"))
    assert api.status_code == 200 and api.json()["result"]["segments"] == result["segments"]
    assert quality_queue.count == 0 and Explanation.objects.count() == 1


def test_asking_twice_gives_one_explanation_and_one_job(world, output, owner, reviewer, quality_queue,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = services.explanation_request(output=output, user=owner)
        second = services.explanation_request(output=reviewer_output(output), user=reviewer)
    assert first.pk == second.pk and Explanation.objects.count() == 1 and quality_queue.count == 1


def reviewer_output(output: ModelOutput) -> ModelOutput:
    """The same output as another request loads it."""
    return ModelOutput.objects.select_related("item", "run").get(pk=output.pk)


def test_a_long_text_is_explained_up_to_the_models_length_and_the_page_says_so(
    world, client, quality_queue, django_capture_on_commit_callbacks
):
    long = output_for(world.done, " ".join(["the movie was great and lovely"] * 30))
    client.force_login(world.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url(long))
    drain()
    html = client.get(url(long)).content.decode()
    max_length = world.done.spec["max_length"]
    assert 'id="explain-truncated"' in html and f"at most {max_length} tokens" in html
    cut = re.search(r'<span class="cut" id="explained-cut">([^<]+)</span>', html).group(1)
    assert cut and long.item.text.endswith(cut)


def test_a_failed_explanation_says_why_and_can_be_asked_again(
    world, output, client, quality_queue, monkeypatch, django_capture_on_commit_callbacks
):
    from training.runs import serving

    def broken(run, text, *, response=None):
        raise ValueError("the GPU caught fire")

    monkeypatch.setattr(serving, "explain", broken)
    client.force_login(world.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url(output))
    drain()
    explanation = Explanation.objects.get()
    assert explanation.status == ExplanationStatus.FAILED and "GPU caught fire" in explanation.error
    html = client.get(url(output)).content.decode()
    assert 'id="explain-error"' in html and "GPU caught fire" in html and ">Try again<" in html

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url(output))
    drain()
    explanation.refresh_from_db()
    assert explanation.status == ExplanationStatus.SUCCEEDED and explanation.error == ""


def test_a_run_without_a_model_is_refused_and_nothing_is_queued(world, output, client, quality_queue):
    shutil.rmtree(Path(settings.MEDIA_ROOT) / world.done.artifact_dir)
    client.force_login(world.users["owner"])
    response = client.post(url(output, "api-output-explanation"))
    assert response.status_code == 400 and response.json()["detail"] == services.NO_MODEL
    assert not Explanation.objects.exists() and quality_queue.count == 0
    html = client.get(url(output)).content.decode()
    assert 'id="explain-no-model"' in html and 'id="explain-button"' not in html


def test_a_job_delivered_twice_explains_once(world, output, owner, quality_queue, monkeypatch,
                                             django_capture_on_commit_callbacks):
    from training.runs import serving

    calls = []
    original = serving.explain
    monkeypatch.setattr(serving, "explain", lambda *a, **k: calls.append(1) or original(*a, **k))
    with django_capture_on_commit_callbacks(execute=True):
        explanation = services.explanation_request(output=output, user=owner)
    quality_queue.enqueue("training.explanations.jobs.explanation_job", explanation.pk)
    drain()
    assert len(calls) == 1


def test_the_sweep_requeues_a_lost_job_and_fails_an_abandoned_one(world, output, owner, quality_queue, settings,
                                                                   django_capture_on_commit_callbacks):
    import datetime as dt

    from django.utils import timezone

    settings.LABELLOOP_RUN_STALE_AFTER_S = 0
    lost = Explanation.objects.create(run=world.done, text_hash="a" * 64, item=output.item, method="x",
                                      requested_by=owner)
    old = timezone.now() - dt.timedelta(seconds=services.JOB_TIMEOUT_S + 5)
    dead = Explanation.objects.create(run=world.done, text_hash="b" * 64, item=output.item, method="x",
                                      requested_by=owner, status=ExplanationStatus.RUNNING, started_at=old)
    Explanation.objects.filter(pk=lost.pk).update(created_at=old)
    with django_capture_on_commit_callbacks(execute=True):  # django-rq enqueues on commit with a real Redis
        failed, requeued = services.explanations_sweep()
    assert failed == [dead.pk] and requeued == [lost.pk]
    assert Explanation.objects.get(pk=dead.pk).error == services.ABANDONED
    assert quality_queue.fetch_job(selectors.explanation_job_id(lost.pk)) is not None


def test_the_run_page_and_the_rating_page_link_to_the_explanation(world, output, client):
    client.force_login(world.users["reviewer"])
    run_page = client.get(reverse("run-detail", args=[world.project.pk, world.done.pk])).content.decode()
    assert f'href="{url(output)}">Why?</a>' in run_page
    rating = client.get(reverse("rating-page", args=[world.project.pk, world.done.pk]), {"output": output.pk})
    assert f'href="{url(output)}"' in rating.content.decode()


def test_reviewers_see_the_probability_only_when_the_project_shows_raters_confidence(world, output, client):
    client.force_login(world.users["reviewer"])
    assert 'id="predicted-probability"' not in client.get(url(output)).content.decode()
    world.project.show_model_confidence = True
    world.project.save(update_fields=["show_model_confidence"])
    assert 'id="predicted-probability"' in client.get(url(output)).content.decode()
    client.force_login(world.users["owner"])
    world.project.show_model_confidence = False
    world.project.save(update_fields=["show_model_confidence"])
    assert 'id="predicted-probability"' in client.get(url(output)).content.decode()


# --- generation ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_causal_artifact(one_torch_thread, registry, tmp_path_factory) -> Path:
    from training.ml.recipe import Recipe
    from training.spec import TrainingSpec

    spec = TrainingSpec.from_dict({"task": "causal_lm", **TINY_LLAMA_SPEC})
    folder = tmp_path_factory.mktemp("tiny-causal-artifact")
    recipe = Recipe(spec, train=qa_rows(24, seed=1), checkpoint_dir=folder / "ck", registry=registry)
    recipe.setup()
    recipe.train()
    return recipe.save(folder / "artifact", snapshot_hash="0" * 64, metrics={})


def test_a_generated_response_is_shown_with_each_tokens_probability(
    tiny_models, tiny_causal_artifact, colours, owner, client, quality_queue, django_capture_on_commit_callbacks
):
    run = fake_run(colours, owner, status=RunStatus.SUCCEEDED)
    target = Path(settings.MEDIA_ROOT) / "runs" / str(run.pk) / "artifact"
    shutil.copytree(tiny_causal_artifact, target)
    TrainingRun.objects.filter(pk=run.pk).update(artifact_dir=f"runs/{run.pk}/artifact")
    run.refresh_from_db()
    item = colours.project.items.first()
    output = ModelOutput.objects.create(run=run, item=item, value={"response": "the sky is blue"})
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url(output))
    drain()
    explanation = Explanation.objects.get()
    assert explanation.status == ExplanationStatus.SUCCEEDED and explanation.method == "token_logprobs"
    html = client.get(url(output)).content.decode()
    tokens = re.findall(r'<span class="w w-(?:likely|unlikely)" style="--a: [0-9.]+" title="p = ([0-9.]+) · '
                        r'log p = (-?[0-9.]+)" tabindex="0" data-p="[0-9.]+">([^<]+)</span>', html)
    assert "".join(text for *_, text in tokens) == "the sky is blue"
    assert all(0 < float(p) <= 1 and float(logp) <= 0 for p, logp, _ in tokens)
    assert 'class="legend"' in html and 'id="explain-summary"' in html and "perplexity" in html
    # A different response to the same prompt is another text: explained anew.
    other = ModelOutput.objects.create(run=fake_run(colours, owner, status=RunStatus.SUCCEEDED), item=item,
                                       value={"response": "the sky is green"})
    assert selectors.explanation_key(other) != selectors.explanation_key(output)


def test_the_explanation_modules_the_web_and_the_worker_parent_load_import_no_ml_library():
    import os
    import subprocess
    import sys

    code = (
        "import sys, django; django.setup(); import training.explanations.jobs, training.explanations.apis, "
        "training.explanations.views; print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LABELLOOP_EMBEDDED_REDIS": "0"}
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
