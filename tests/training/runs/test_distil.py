"""Knowledge distillation through the product: a teacher run, then a student of it queued from the service (and the
page and the API), trained by the worker on the teacher's soft labels, evaluated on the snapshot's own test split
with its human labels, and shown beside the teacher. Refusals change nothing."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Item, SnapshotItem
from core.errors import ServiceError
from tests.fixtures.runs import TINY_BERT_SPEC, fake_run, run_worker
from training.models import RunEvent, RunStatus, TrainingRun
from training.runs import runner, selectors, services
from training.spec import ERROR_BETWEEN, ERROR_POSITIVE, ERROR_STUDENT_LAYERS_FULL

pytestmark = pytest.mark.usefixtures("tiny_models", "queues")

STUDENT = {"student_layers": 1, "learning_rate": 0.01, "epochs": 2, "distill_temperature": 2.0, "distill_alpha": 0.7}


def _teacher(snapshot, owner, capture) -> TrainingRun:
    with capture(execute=True):
        run = services.run_start(snapshot=snapshot, user=owner, spec_data=TINY_BERT_SPEC, name="teacher")
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_a_student_learns_from_its_teacher_and_is_shown_beside_it(
    sentiment, owner, client, django_capture_on_commit_callbacks
):
    teacher = _teacher(sentiment, owner, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        student = services.run_distil(teacher=teacher, user=owner, spec_data=STUDENT)
    assert student.teacher == teacher and student.snapshot == teacher.snapshot
    assert student.name == f"student of run {teacher.pk}"
    assert student.spec["method"] == "full" and student.spec["student_layers"] == 1
    # The teacher's data settings are the student's.
    assert all(student.spec[key] == teacher.spec[key] for key in ("max_length", "batch_size", "seed"))
    run_worker()
    student.refresh_from_db()
    assert student.status == RunStatus.SUCCEEDED, student.error

    # The teacher's soft labels were kept: every train row, and the 4 unlabelled items, none of them in a snapshot.
    record = json.loads((selectors.run_dir(student) / runner.TEACHER_DIR / runner.SOFT_LABELS_FILE).read_text())
    assert record["teacher_run"] == teacher.pk and record["labels"] == ["pos", "neg"]
    assert len(record["train_logits"]) == student.metrics["rows"]["train"]
    never_snapshotted = Item.objects.filter(project=sentiment.project, split_row__isnull=True)
    unlabelled = set(never_snapshotted.values_list("pk", flat=True))
    assert {row["item_id"] for row in record["unlabelled"]} == unlabelled and len(unlabelled) == 4
    assert not SnapshotItem.objects.filter(item_id__in=unlabelled).exists()

    report = student.metrics["distillation"]
    assert report["rows"] == {"train": student.metrics["rows"]["train"], "unlabelled": 4}
    assert report["temperature"] == 2.0 and report["alpha"] == 0.7
    # Student and teacher scored on the same test split with the human labels: the student's own test figures
    # are the figures of the comparison, and the teacher's are those of its own evaluation.
    assert report["n"] == student.metrics["test"]["n"] == teacher.metrics["test"]["n"]
    assert report["student"]["macro_f1"] == pytest.approx(student.metrics["test"]["macro_f1"])
    assert report["teacher"]["macro_f1"] == pytest.approx(teacher.metrics["test"]["macro_f1"])
    for name in ("student", "teacher"):
        low, high = report[name]["intervals"]["macro_f1"]
        assert low <= report[name]["macro_f1"] <= high
        assert report[name]["speed"]["items_per_s"] > 0 and len(report[name]["speed"]["passes"]) == 3
    difference = report["difference"]["macro_f1"]
    assert difference["value"] == pytest.approx(report["student"]["macro_f1"] - report["teacher"]["macro_f1"])
    assert difference["interval"][0] <= difference["value"] <= difference["interval"][1]
    sizes = report["sizes"]
    assert sizes["student"]["layers"] == 1 and sizes["teacher"]["layers"] == 2
    assert sizes["student"]["parameters"] < sizes["teacher"]["parameters"]
    assert sizes["student"]["weights_bytes"] < sizes["teacher"]["weights_bytes"]
    # The student is saved whole at its new depth: plain transformers reloads it without a base model.
    artifact = selectors.run_artifact_path(student)
    assert json.loads((artifact / "config.json").read_text())["num_hidden_layers"] == 1
    assert (artifact / "model.safetensors").is_file() and not (artifact / "adapter_config.json").exists()
    assert "1 of the base model's layers kept" in (artifact / "README.md").read_text()

    # The pages: the teacher's offers the action and lists its student; the student's shows both side by side.
    client.force_login(owner)
    teacher_page = client.get(reverse("run-detail", args=[sentiment.project.pk, teacher.pk])).content.decode()
    assert 'id="run-distil"' in teacher_page
    assert reverse("run-distil", args=[sentiment.project.pk, teacher.pk]) in teacher_page
    assert 'id="run-students"' in teacher_page and f"Run #{student.pk}" in teacher_page
    page = client.get(reverse("run-detail", args=[sentiment.project.pk, student.pk])).content.decode()
    assert 'id="run-teacher"' in page and 'id="distil-sizes"' in page and 'id="distil-figures"' in page
    assert "Transformer layers" in page and "Speed (items/s)" in page and "Student − teacher" in page

    # The API says the same.
    api = APIClient()
    api.force_authenticate(owner)
    body = api.get(reverse("api-run-detail", args=[sentiment.project.pk, student.pk])).json()
    assert body["teacher"] == teacher.pk and body["distillation"]["sizes"] == sizes
    assert body["distillation"]["difference"]["macro_f1"]["interval"] == difference["interval"]
    assert api.get(reverse("api-run-detail", args=[sentiment.project.pk, teacher.pk])).json()["students"] == [
        student.pk
    ]


def test_a_resumed_student_keeps_its_teacher(world, django_capture_on_commit_callbacks):
    owner = world.users["owner"]
    student = fake_run(world.snapshot, owner, status=RunStatus.CANCELLED, teacher=world.done)
    folder = settings.MEDIA_ROOT / student.checkpoint_dir / "step-000002"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text("{}")
    resumed = services.run_resume(run=student, user=owner)
    assert resumed.teacher == world.done and resumed.resumed_from == student


def test_a_student_without_unlabelled_items_and_a_cap_on_them(world, settings):
    settings.LABELLOOP_DISTIL_UNLABELLED_MAX = 2
    project = world.project
    drawn = selectors.distillation_unlabelled(project=project, limit=2, seed=1)
    assert len(drawn) == 2 and drawn == sorted(drawn)
    assert drawn == selectors.distillation_unlabelled(project=project, limit=2, seed=1)
    assert all(not SnapshotItem.objects.filter(item_id=pk).exists() for pk, _ in drawn)
    student = services.run_distil(
        teacher=world.done, user=world.users["owner"], spec_data={"student_layers": 1, "distill_unlabelled": False}
    )
    assert student.spec["distill_unlabelled"] is False


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"student_layers": 2}, "student_layers", services.STUDENT_TOO_DEEP.format(layers=2)),
        ({"student_layers": 0}, "student_layers", services.DISTIL_NOT_SMALLER.format(layers=2)),
        ({"student_layers": 5}, "student_layers", services.STUDENT_TOO_DEEP.format(layers=2)),
        ({"student_layers": 1, "method": "lora"}, "student_layers", ERROR_STUDENT_LAYERS_FULL),
        ({"student_layers": 1, "distill_temperature": 0}, "distill_temperature", ERROR_POSITIVE),
        ({"student_layers": 1, "distill_alpha": 1.5}, "distill_alpha", ERROR_BETWEEN.format(low=0.0, high=1.0)),
        ({"student_layers": 1, "distill_unlabelled": "maybe"}, "distill_unlabelled", "must be true or false"),
    ],
)
def test_invalid_student_settings_are_refused_by_field_and_nothing_is_queued(world, spec, field, message):
    before = TrainingRun.objects.count()
    with pytest.raises(services.RunInputError) as caught:
        services.run_distil(teacher=world.done, user=world.users["owner"], spec_data=spec)
    assert caught.value.errors[field] == message
    assert TrainingRun.objects.count() == before


def test_only_a_finished_classification_run_can_teach(world, colours, owner):
    queued = world.queued()
    with pytest.raises(ServiceError, match=services.DISTIL_NOT_FINISHED):
        services.run_distil(teacher=queued, user=owner, spec_data={"student_layers": 1})
    generator = fake_run(colours, owner, status=RunStatus.SUCCEEDED)
    with pytest.raises(ServiceError, match="distilling an instruction"):
        services.run_distil(teacher=generator, user=owner, spec_data={})
    assert not TrainingRun.objects.filter(teacher__isnull=False).exists()


def test_the_distil_form_shows_each_invalid_field_and_queues_nothing(world, client):
    client.force_login(world.users["owner"])
    url = reverse("run-distil", args=[world.project.pk, world.done.pk])
    page = client.get(url).content.decode()
    # Pre-filled: the same encoder, half its layers, trained whole, temperature 2, alpha 0.5, unlabelled included.
    assert 'name="student_layers" value="1"' in page and 'name="distill_temperature" value="2.0"' in page
    assert '<option value="full" selected>' in page and '<option value="true" selected>Yes' in page
    response = client.post(url, {"student_layers": "0", "distill_alpha": "x", "distill_unlabelled": "true"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "must make the student smaller than its teacher" in html and "must be a number" in html
    assert not TrainingRun.objects.filter(teacher=world.done).exists()
    assert RunEvent.objects.filter(run__teacher=world.done).count() == 0


def test_a_resumed_student_learns_from_its_parents_soft_labels_not_new_ones(world, monkeypatch, tmp_path):
    """The parent's record (teacher logits, unlabelled item ids) is reused: items added since do not join, and
    the teacher does not score anything again."""
    from tests.fixtures.people import add_items
    from training.runs.selectors import distillation_unlabelled
    from training.spec import TrainingSpec

    owner, teacher = world.users["owner"], world.done
    parent = fake_run(world.snapshot, owner, status=RunStatus.CANCELLED, teacher=teacher)
    spec = TrainingSpec.from_dict({**parent.spec, "method": "full", "student_layers": 1})
    train = [{"text": "good film", "label": "pos"}, {"text": "bad film", "label": "neg"}]
    loaded = runner._Teacher.load(parent, ["pos", "neg"])

    class Callbacks:
        def phase_progress(self, name, total):
            from training.ml.progress import PhaseProgress

            return PhaseProgress(name, total, report=lambda figures: None)

    first = loaded.targets(parent, spec, train, Callbacks(), selectors.run_dir(parent))
    drawn = distillation_unlabelled(project=world.project, limit=100, seed=spec.seed)
    assert [text for _, text in drawn] == list(first.unlabelled_texts) and len(drawn) == 4

    add_items(world.project, ["a message added after the parent ran"])
    resumed = fake_run(world.snapshot, owner, status=RunStatus.RUNNING, teacher=teacher, resumed_from=parent)

    class NoScoring:
        def phase_progress(self, name, total):
            raise AssertionError("the teacher scored texts again")

    again = loaded.targets(resumed, spec, train, NoScoring(), selectors.run_dir(resumed))
    assert list(again.unlabelled_texts) == list(first.unlabelled_texts)
    assert (again.train_logits == first.train_logits).all()
    assert (again.unlabelled_logits == first.unlabelled_logits).all()
    record = json.loads((selectors.run_dir(resumed) / runner.TEACHER_DIR / runner.SOFT_LABELS_FILE).read_text())
    assert [row["item_id"] for row in record["unlabelled"]] == [pk for pk, _ in drawn]
