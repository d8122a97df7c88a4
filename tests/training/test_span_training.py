"""The span path end to end on a tiny model: a span snapshot trains, is evaluated beside the gazetteer, and
the model's spans become pre-annotations of new items that the annotate page shows for correction."""

from __future__ import annotations

import io

import pytest

from annotation.datasets.services import snapshot_create
from annotation.imports import services as imports
from annotation.models import Item, LabelsAs, Role, TaskType
from annotation.projects.services import membership_set, project_create
from core.errors import ServiceError
from tests.fixtures.pages import url
from tests.fixtures.people import add_items
from training.runs.span_training import NOT_SPANS, span_model_train, span_prelabels_write

PEOPLE = ["alice", "bob", "carol", "dave"]
PLACES = ["paris", "rome", "oslo", "lima"]


def conll(count: int) -> bytes:
    lines = []
    for i in range(count):
        lines += [f"{PEOPLE[i % 4]} B-PER", "was O", "in O", f"{PLACES[(i // 4) % 4]} B-LOC", f"day{i} O", ""]
    return "\n".join(lines).encode()


@pytest.mark.slow
def test_a_span_snapshot_trains_and_pre_annotates_new_items(owner, annotator, registry, tmp_path, client):
    project = project_create(owner=owner, name="NER", task_type=TaskType.SPANS, labels=["PER", "LOC"], overlap=1)
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    job = imports.import_create(
        project=project, user=owner, file_name="ner.conll", fileobj=io.BytesIO(conll(48)), labels_as=LabelsAs.FINAL
    )
    assert job.status == "succeeded", job.errors
    snapshot = snapshot_create(project=project, user=owner, name="v1", allow_small_test=True)
    result = span_model_train(
        snapshot=snapshot, base_model="tiny-bert", epochs=10, learning_rate=1e-2, registry=registry,
        artifact_dir=tmp_path / "model",
    )
    test = result.metrics["test"]
    assert result.rows["train"] > 0 and test["entities"] == 2 * result.rows["test"]
    assert {"precision", "recall", "f1"} <= set(test) and "gazetteer" in test["baselines"]
    assert (tmp_path / "model" / "adapter_model.safetensors").is_file()

    fresh = add_items(project, ["bob was in oslo today", "carol was in lima again"])
    written = span_prelabels_write(project=project, recipe=result.recipe)
    assert written == 2
    for item in Item.objects.filter(pk__in=[i.pk for i in fresh]):
        for span in item.prelabel["spans"]:
            assert span["label"] in ("PER", "LOC") and 0 <= span["start"] < span["end"] <= len(item.text)

    project.show_prelabels = True
    project.save(update_fields=["show_prelabels"])
    client.force_login(annotator)
    page = client.get(url("annotate", project.pk)).content.decode()
    assert "the suggested spans are marked" in page and 'id="span-text"' in page  # the editor starts from them


def test_a_label_snapshot_is_refused(project, owner):
    from annotation.models import Snapshot

    snapshot = Snapshot(project=project, manifest={"task_type": "single_label"})
    with pytest.raises(ServiceError) as exc:
        span_model_train(snapshot=snapshot)
    assert exc.value.message == NOT_SPANS.format(task_type="single_label")


def test_the_run_pages_offer_span_training(owner, client):
    from tests.fixtures.api import api_as

    project = project_create(owner=owner, name="NER", task_type=TaskType.SPANS, labels=["PER", "LOC"], overlap=1)
    imports.import_create(
        project=project, user=owner, file_name="ner.conll", fileobj=io.BytesIO(conll(8)), labels_as=LabelsAs.FINAL
    )
    snapshot = snapshot_create(project=project, user=owner, name="v1", allow_small_test=True)
    client.force_login(owner)
    page = client.get(url("run-create", project.pk, snapshot.pk))
    assert page.status_code == 200 and "span_train" not in page.content.decode()
    defaults = api_as(owner).get(f"/api/projects/{project.pk}/runs/defaults/")
    assert defaults.status_code == 200, defaults.json()
    assert defaults.json()["spec"]["task"] == "spans" and defaults.json()["spec"]["method"] == "lora"
