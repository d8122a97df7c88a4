"""Training pages: the permission matrix of every page × role, the run form, the live fragment, the evaluation
beside its baselines, the compare page, the model download and the model card.

    page                                   owner  annotator  reviewer  outsider  anonymous
    GET  run-list                           200     403        200       404       302
    GET  run-compare ?snapshot=             200     403        200       404       302
    GET  run-create                         200     403        403       404       302
    POST run-create                         302     403        403       404       302
    GET  run-detail                         200     403        200       404       302
    GET  run-detail (htmx fragment)         200     403        200       404       302
    POST run-cancel                         302     403        403       404       302
    GET  run-cancel (the confirmation)      200     403        403       404       302
    POST run-resume                         302     403        403       404       302
    GET  run-distil                         200     403        403       404       302
    POST run-distil                         302     403        403       404       302
    GET  run-artifact                       200     403        403       404       302
    GET  run-model-card                     200     403        200       404       302
    POST prediction-batch-start             302     403        403       404       302
    POST run-span-prelabels                 302     403        403       404       302
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.fixtures.runs import FAKE_TEST_METRICS, TINY_BERT_SPEC, World, fake_run
from training.models import RunStatus, TrainingRun
from training.runs import services
from training.spec import TrainingSpec

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")


@dataclass(frozen=True)
class Page:
    method: str
    name: str
    expected: tuple[int, int, int, int, int]
    # (world) -> (url kwargs beyond project_id, query or form data)
    prepare: Callable[[World], tuple[dict, dict]] = lambda world: ({}, {})
    htmx: bool = False


def _done(world: World) -> tuple[dict, dict]:
    return {"run_id": world.done.pk}, {}


# fmt: off
PAGES = [
    Page("get",  "run-list",               (200, 403, 200, 404, 302)),
    Page("get",  "run-compare",            (200, 403, 200, 404, 302), lambda w: ({}, {"snapshot": w.snapshot.pk})),
    Page("get",  "run-create",             (200, 403, 403, 404, 302), lambda w: ({"snapshot_id": w.snapshot.pk}, {})),
    Page("post", "run-create",             (302, 403, 403, 404, 302),
         lambda w: ({"snapshot_id": w.snapshot.pk}, {"name": "mine", **TINY_BERT_SPEC})),
    Page("get",  "run-detail",             (200, 403, 200, 404, 302), _done),
    Page("get",  "run-detail",             (200, 403, 200, 404, 302), _done, htmx=True),
    Page("post", "run-cancel",             (302, 403, 403, 404, 302), lambda w: ({"run_id": w.queued().pk}, {})),
    Page("get",  "run-cancel",             (200, 403, 403, 404, 302), lambda w: ({"run_id": w.queued().pk}, {})),
    Page("post", "run-resume",             (302, 403, 403, 404, 302),
         lambda w: ({"run_id": w.cancelled_with_checkpoint().pk}, {})),
    Page("get",  "run-distil",             (200, 403, 403, 404, 302), _done),
    Page("post", "run-distil",             (302, 403, 403, 404, 302),
         lambda w: ({"run_id": w.done.pk}, {"student_layers": "1", "distill_unlabelled": "false"})),
    Page("get",  "run-artifact",           (200, 403, 403, 404, 302), _done),
    Page("get",  "run-model-card",         (200, 403, 200, 404, 302), _done),
    Page("post", "prediction-batch-start", (302, 403, 403, 404, 302), lambda w: ({"run_id": w.done.pk},
                                                                               {"scope": "test"})),
    Page("post", "run-span-prelabels",     (302, 403, 403, 404, 302), _done),
]
# fmt: on


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"{p.method}-{p.name}{'-htmx' if p.htmx else ''}")
def test_page_status_per_role(world, client, page, role):
    kwargs, data = page.prepare(world)
    url = reverse(page.name, kwargs={"project_id": world.project.pk, **kwargs})
    if role != "anonymous":
        client.force_login(world.users[role])
    headers = {"HX-Request": "true"} if page.htmx else {}
    response = getattr(client, page.method)(url, data, headers=headers)
    assert response.status_code == page.expected[ROLES.index(role)]
    if role == "anonymous":
        assert response["Location"].startswith(reverse("login"))


def test_the_table_above_is_the_matrix():
    rows = [line.split() for line in __doc__.splitlines() if line.strip().split(" ")[0] in ("GET", "POST")]
    table = [(cells[0].lower(), cells[1], tuple(int(c) for c in cells[-5:])) for cells in rows]
    assert table == [(page.method, page.name, page.expected) for page in PAGES]


def test_every_training_page_is_in_the_matrix():
    from training.runs import urls

    assert {pattern.name for pattern in urls.urlpatterns} == {page.name for page in PAGES}


def test_the_form_is_prefilled_with_the_tasks_defaults_and_the_snapshots_class_weights(world, client):
    from annotation.datasets.services import snapshot_create

    owner = world.users["owner"]
    weighted = snapshot_create(project=world.project, user=owner, name="v2", balance_mode="class_weights")
    client.force_login(world.users["owner"])
    url = reverse("run-create", args=[world.project.pk, weighted.pk])
    html = client.get(url).content.decode()
    defaults = TrainingSpec.defaults("classification")
    assert 'name="learning_rate" value="0.003"' in html and defaults.learning_rate == 0.003
    assert '<option value="minilm" selected>' in html and '<option value="tiny-bert">' in html
    assert '<option value="macro_f1" selected>' in html and "max_new_tokens" not in html
    weights = weighted.manifest["class_balance"]["class_weights"]
    assert f"{weights['pos']}" in html and "class_weights" in html

    # Choosing another method (htmx) brings its learning rate and keeps what was typed.
    fragment = client.get(url, {"method": "ia3", "changed": "method", "epochs": "7", "learning_rate": "0.003"},
                          headers={"HX-Request": "true"}).content.decode()
    assert "<form" not in fragment and 'name="learning_rate" value="0.01"' in fragment
    assert 'name="epochs" value="7"' in fragment and '<option value="ia3" selected>' in fragment


def test_the_instruction_form_offers_generation_settings(colours, owner, client, tiny_models):
    client.force_login(owner)
    html = client.get(reverse("run-create", args=[colours.project.pk, colours.pk])).content.decode()
    assert '<option value="smollm2-135m" selected>' in html and 'name="max_new_tokens"' in html
    assert 'name="class_weights"' not in html and '<option value="perplexity">' in html


def test_invalid_settings_come_back_next_to_their_fields_and_nothing_is_queued(world, client, queues):
    client.force_login(world.users["owner"])
    before = TrainingRun.objects.count()
    url = reverse("run-create", args=[world.project.pk, world.snapshot.pk])
    response = client.post(url, {**TINY_BERT_SPEC, "lora_r": "eight", "batch_size": "0", "target_modules": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert services.INVALID_SETTINGS in html
    for field, message in (("lora_r", "must be a whole number"), ("batch_size", "must be at least 1")):
        block = re.search(rf'data-field="{field}">(.*?)</div>', html, re.S).group(1)
        assert f'<p class="error">{message}</p>' in block and 'value="' in block
    assert TrainingRun.objects.count() == before and len(queues[services.QUEUE]) == 0


def test_a_valid_post_queues_the_run_and_shows_its_page(world, client, queues, django_capture_on_commit_callbacks):
    client.force_login(world.users["owner"])
    url = reverse("run-create", args=[world.project.pk, world.snapshot.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"name": "from the form", **TINY_BERT_SPEC, "bf16": "", "class_weights": ""})
    run = TrainingRun.objects.get(name="from the form")
    assert response["Location"] == reverse("run-detail", args=[world.project.pk, run.pk])
    assert run.spec["class_weights"] is None and run.spec["bf16"] is None and run.spec["epochs"] == 2
    assert queues[services.QUEUE].fetch_job(f"train-{run.pk}") is not None


def test_multi_label_snapshots_get_a_clear_refusal_instead_of_a_form(owner, client, tiny_models):
    from annotation.datasets.services import snapshot_create
    from annotation.models import TaskType
    from annotation.projects.services import project_create
    from tests.fixtures.people import add_items
    from tests.fixtures.runs import approve

    project = project_create(owner=owner, name="Tags", task_type=TaskType.MULTI_LABEL, labels=["a", "b"])
    approve(add_items(project, ["x", "y", "z"]), [{"labels": ["a"]}] * 3)
    snapshot = snapshot_create(project=project, user=owner, name="t")
    client.force_login(owner)
    html = client.get(reverse("run-create", args=[project.pk, snapshot.pk])).content.decode()
    assert services.MULTI_LABEL_UNSUPPORTED in html and "Start training" not in html


def test_the_live_fragment_polls_while_the_run_runs_and_stops_once_it_ends(
    world, client, django_assert_max_num_queries
):
    owner = world.users["owner"]
    run = fake_run(world.snapshot, owner, status=RunStatus.RUNNING, heartbeat_at=timezone.now(), progress={
        "phase": "training", "step": 30, "total_steps": 120, "epoch": 0.75, "lr": 0.0004, "train_loss": 0.4321,
        "eta_s": 95, "validation": {"loss": 0.38, "accuracy": 0.81, "step": 20},
    })
    services.event_add(run=run, kind="train", step=30, data={"train_loss": 0.4321, "lr": 0.0004})
    services.event_add(run=run, kind="eval", step=20, data={"loss": 0.38, "accuracy": 0.81})
    client.force_login(world.users["reviewer"])
    url = reverse("run-detail", args=[world.project.pk, run.pk])
    with django_assert_max_num_queries(12):
        html = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 2s"' in html and 'aria-valuenow="25"' in html
    assert "30 / 120" in html and "1 min 35 s" in html and "4.00e-04" in html and "0.4321" in html
    assert "Validation accuracy" in html and "0.8100" in html
    assert '"steps": [30]' in html and '"accuracy": [0.81]' in html  # the charts' data
    assert "Cancel run" not in html  # reviewers watch, owners act

    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, metrics={"test": FAKE_TEST_METRICS})
    html = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in html and "Succeeded" in html and 'id="run-evaluation"' in html


def test_a_run_whose_worker_died_shows_heartbeat_lost_and_the_sweep_marks_it_failed(world, client, settings):
    run = fake_run(world.snapshot, world.users["owner"], status=RunStatus.RUNNING,
                   heartbeat_at=timezone.now() - dt.timedelta(seconds=settings.LABELLOOP_RUN_STALE_AFTER_S + 5))
    client.force_login(world.users["reviewer"])
    url = reverse("run-detail", args=[world.project.pk, run.pk])
    html = client.get(url).content.decode()
    assert 'id="run-heartbeat-lost"' in html and "Running" in html
    assert "heartbeat lost" in client.get(reverse("run-list", args=[world.project.pk])).content.decode()
    api = client.get(reverse("api-run-detail", args=[run.project_id, run.pk]))
    assert api.status_code == 200 and api.json()["status"] == RunStatus.RUNNING
    assert TrainingRun.objects.get(pk=run.pk).status == RunStatus.RUNNING, "a read never writes"
    assert services.runs_mark_abandoned() == [run.pk]
    html = client.get(url).content.decode()
    assert "Failed" in html and services.ABANDONED in html and "hx-trigger" not in html


def test_the_evaluation_shows_the_model_beside_its_baselines(world, client):
    client.force_login(world.users["reviewer"])
    html = client.get(reverse("run-detail", args=[world.project.pk, world.done.pk])).content.decode()
    table = re.search(r'<table class="table eval-table">(.*?)</table>', html, re.S).group(1)
    assert "Majority class" in table and "Logistic regression on embeddings" in table
    assert re.search(r"<td>Accuracy</td><td class=\"model\">0.750</td><td>0.500</td><td>0.625</td>", table)
    assert re.search(r"<td>Calibration error \(ECE\)</td><td class=\"model\">0.120</td>", table)
    assert re.search(r"<td>Loss</td><td class=\"model\">0.500</td><td>—</td><td>0.700</td>", table)
    assert "<td>pos</td><td>1.000</td><td>0.500</td>" in html  # per-class precision and recall
    assert '<td class="hit">2</td>' in html  # the confusion matrix's diagonal
    assert "Download model" not in html and "Resume" not in html


COMPARED_TEST_METRICS = {
    **FAKE_TEST_METRICS,
    "n": 400,
    "intervals": {"accuracy": [0.71, 0.79], "macro_f1": [0.69, 0.77]},
    "baselines": {
        "majority": {"n": 400, "accuracy": 0.5, "macro_f1": 0.333, "intervals": {"accuracy": [0.45, 0.55]},
                     "method": "Always the most frequent training label.", "chosen": {"label": "pos"}},
        "tfidf_logreg": {"n": 400, "accuracy": 0.78, "macro_f1": 0.76, "intervals": {"macro_f1": [0.72, 0.8]},
                         "method": "TF-IDF + logistic regression, fitted on train.",
                         "chosen": {"features": "word 1-2-grams", "C": 10.0, "class_weight": "balanced"},
                         "validation_macro_f1": 0.81},
    },
    "comparison": {"metric": "macro_f1", "best_baseline": "tfidf_logreg", "difference": -0.03,
                   "difference_interval": [-0.06, 0.0], "verdict": "not_better",
                   "message": "This model is not better than the best baseline (tfidf logreg): macro-f1 -0.030."},
}


def evaluation_table(client, world, metrics) -> tuple[str, str]:
    TrainingRun.objects.filter(pk=world.done.pk).update(metrics={"test": metrics})
    client.force_login(world.users["reviewer"])
    html = client.get(reverse("run-detail", args=[world.project.pk, world.done.pk])).content.decode()
    return html, re.search(r'<table class="table eval-table">(.*?)</table>', html, re.S).group(1)


def test_the_evaluation_shows_intervals_each_baselines_method_and_choice_and_the_verdict(world, client):
    html, table = evaluation_table(client, world, COMPARED_TEST_METRICS)
    assert re.search(r'<td>Macro-F1</td><td class="model-plain">0.730 <span class="ci">\[0.690, 0.770\]</span></td>'
                     r'<td>0.333</td><td>0.760 <span class="ci">\[0.720, 0.800\]</span></td>', table)
    assert "TF-IDF + logistic regression</th>" in table
    verdict = re.search(r'<p class="verdict verdict-warn" id="run-verdict"[^>]*>(.*?)</p>', html).group(1)
    assert verdict == "This model is not better than the best baseline (tfidf logreg): macro-f1 -0.030."
    baselines = re.search(r'<table class="table baselines" id="run-baselines">(.*?)</table>', html, re.S).group(1)
    assert "TF-IDF + logistic regression, fitted on train." in baselines and "(best)" in baselines
    assert "features=word 1-2-grams, C=10.0, class_weight=balanced" in baselines
    assert "validation macro-F1 0.810" in baselines and "label=pos" in baselines

    better = {**COMPARED_TEST_METRICS, "comparison": {**COMPARED_TEST_METRICS["comparison"], "verdict": "better",
                                                      "message": "Better than the best baseline."}}
    html, table = evaluation_table(client, world, better)
    assert 'class="verdict verdict-good"' in html and '<td class="model">' in table


def test_a_model_that_learned_nothing_gets_a_plain_warning_not_a_bold_figure(world, client):
    majority = FAKE_TEST_METRICS["baselines"]["majority"]
    nothing = {**FAKE_TEST_METRICS, "accuracy": majority["accuracy"], "macro_f1": majority["macro_f1"]}
    html, table = evaluation_table(client, world, nothing)  # a run made before comparisons were recorded
    verdict = re.search(r'<p class="verdict verdict-warn" id="run-verdict"[^>]*>(.*?)</p>', html).group(1)
    assert verdict.startswith("This model learned nothing usable: its macro-F1 (0.333)")
    assert 'class="model"' not in table and "verdict-good" not in html


def test_the_generation_evaluation_compares_with_the_base_model(colours, owner, client, tiny_models):
    test = {"n": 2, "loss": 1.2, "perplexity": 3.32, "rouge_l": 0.6, "bleu": 41.0,
            "samples": [{"prompt": "what colour is the sky", "reference": "the sky is blue", "response": "blue"}],
            "baselines": {"base_model": {"loss": 5.1, "perplexity": 164.0, "rouge_l": 0.1, "bleu": 2.0}}}
    run = fake_run(colours, owner, status=RunStatus.SUCCEEDED, metrics={"test": test})
    client.force_login(owner)
    html = client.get(reverse("run-detail", args=[colours.project.pk, run.pk])).content.decode()
    assert "Base model, not fine-tuned" in html
    assert re.search(r"<td>Perplexity</td><td class=\"model\">3.320</td><td>164.000</td>", html)
    assert re.search(r"<td>ROUGE-L</td><td class=\"model\">0.600</td><td>0.100</td>", html)
    assert re.search(r"<td>BLEU</td><td class=\"model\">41.000</td><td>2.000</td>", html)
    assert "the sky is blue" in html
    scales = re.search(r'<p class="muted" id="generation-scales">(.*?)</p>', html, re.S).group(1)
    assert "BLEU: 0–100, corpus-level" in scales and "ROUGE-L: 0–1" in scales
    assert "n=2 references: too few to compare runs" in scales


def test_the_compare_page_puts_a_snapshots_runs_side_by_side(world, client):
    other = {**FAKE_TEST_METRICS, "accuracy": 0.9, "macro_f1": 0.88}
    spec = {**world.done.spec, "lora_r": 16}
    second = fake_run(world.snapshot, world.users["owner"], status=RunStatus.SUCCEEDED, metrics={"test": other})
    TrainingRun.objects.filter(pk=second.pk).update(spec=spec)
    client.force_login(world.users["reviewer"])
    html = client.get(reverse("run-compare", args=[world.project.pk]), {"snapshot": world.snapshot.pk}).content.decode()
    assert f"#{world.done.pk}" in html and f"#{second.pk}" in html
    assert re.search(r"<th>Accuracy</th><td>0.750</td><td class=\"best\">0.900</td>", html)
    assert re.search(r"<th>lora_r</th><td>8</td><td>16</td>", html)  # only the settings that differ
    assert "<th>epochs</th>" not in html


def test_the_model_downloads_as_a_zip_of_safetensors_and_json_only(world, client):
    client.force_login(world.users["owner"])
    response = client.get(reverse("run-artifact", args=[world.project.pk, world.done.pk]))
    assert response["Content-Type"] == "application/zip" and ".zip" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"adapter_model.safetensors", "adapter_config.json", "run.json", "README.md", "tokenizer.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"))]
    assert archive.testzip() is None


def test_the_model_card_shows_as_text_and_the_run_page_links_to_it_for_reviewers_too(world, client):
    client.force_login(world.users["reviewer"])
    card_url = reverse("run-model-card", args=[world.project.pk, world.done.pk])
    page = client.get(reverse("run-detail", args=[world.project.pk, world.done.pk])).content.decode()
    assert f'href="{card_url}"' in page and "run-download" not in page
    response = client.get(card_url)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    card = response.content.decode()
    assert card.startswith("---\n") and "## Load it with transformers and peft" in card

    queued = world.queued()
    assert client.get(reverse("run-model-card", args=[world.project.pk, queued.pk])).status_code == 404
    page = client.get(reverse("run-detail", args=[world.project.pk, queued.pk])).content.decode()
    assert "run-model-card" not in page


def test_the_snapshot_and_project_pages_link_to_training_for_those_who_may(world, client):
    snapshot_url = reverse("snapshot-detail", args=[world.project.pk, world.snapshot.pk])
    train_url = reverse("run-create", args=[world.project.pk, world.snapshot.pk])
    client.force_login(world.users["owner"])
    assert train_url in client.get(snapshot_url).content.decode()
    assert reverse("run-list", args=[world.project.pk]) in client.get(
        reverse("project-detail", args=[world.project.pk])
    ).content.decode()
    client.force_login(world.users["reviewer"])
    assert train_url not in client.get(snapshot_url).content.decode()
    client.force_login(world.users["annotator"])
    assert reverse("run-list", args=[world.project.pk]) not in client.get(
        reverse("project-detail", args=[world.project.pk])
    ).content.decode()


def test_cancelling_asks_first_and_says_what_the_run_loses(world, client):
    run = world.queued()
    client.force_login(world.users["owner"])
    url = reverse("run-cancel", args=[world.project.pk, run.pk])
    page = client.get(url).content.decode()
    assert "It has not started: it never trains." in page and "no evaluation on the test split" in page
    assert "no checkpoint yet" in page
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED  # the confirmation changes nothing
    detail = client.get(reverse("run-detail", args=[world.project.pk, run.pk])).content.decode()
    assert f'id="run-cancel" href="{url}"' in detail
