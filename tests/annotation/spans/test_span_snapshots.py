"""Span snapshots: rows carry spans as code-point offsets, splits stratified by labels and leakage-free, and
the exports (CoNLL, Label Studio, BIO on the base model's tokenizer) agree with the offsets."""

from __future__ import annotations

import io
import json

import pytest

from annotation.datasets.services import snapshot_create
from annotation.imports import services as imports
from annotation.models import Item, LabelsAs
from tests.fixtures.api import api_as
from tests.fixtures.pages import url
from tests.fixtures.spans import span_project
from training.ml.token_labels import bio_rows, load_fast_tokenizer, tags_for_offsets
from training.runs.selectors import model_registry

PEOPLE = ["Ada", "Zoé", "Marie", "Pierre", "Émile", "Grace", "Alan", "Kurt"]
PLACES = ["Paris", "London", "São Paulo", "Zürich", "Kyōto"]


def conll() -> bytes:
    lines = []
    for i in range(40):
        who, where = PEOPLE[i % len(PEOPLE)], PLACES[i % len(PLACES)]
        lines += [f"{who} B-PER", "went O", "to O"]
        lines += [f"{part} {'B' if n == 0 else 'I'}-LOC" for n, part in enumerate(where.split())]
        lines += [f"day{i} O", "😀 O", ""]
    return "\n".join(lines).encode()


@pytest.fixture
def snapshot(owner):
    project = span_project(owner)
    Item.objects.filter(project=project).delete()
    job = imports.import_create(
        project=project, user=owner, file_name="people.conll", fileobj=io.BytesIO(conll()), labels_as=LabelsAs.FINAL
    )
    assert job.status == "succeeded", job.errors
    return snapshot_create(project=project, user=owner, name="v1", allow_small_test=True)


def rows(client, snap, **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(url("snapshot-download", snap.project_id, snap.pk) + ("?" + query if query else ""))
    assert response.status_code == 200, response.content
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines() if line]


def test_rows_carry_spans_as_offsets_into_the_exact_text(client, owner, snapshot):
    client.force_login(owner)
    got = rows(client, snapshot)
    assert len(got) == 40 and {r["split"] for r in got} == {"train", "validation", "test"}
    for row in got:
        pieces = [(row["text"][s["start"]:s["end"]], s["label"]) for s in row["spans"]]
        assert pieces[0][1] == "PER" and pieces[0][0] in PEOPLE and pieces[1] == (pieces[1][0], "LOC")
        assert pieces[1][0] in PLACES
    assert snapshot.manifest["labels"]["PER"] == 40 and snapshot.manifest["labels"]["LOC"] == 40


def test_bio_export_aligns_tags_to_the_base_tokenizer(client, owner, snapshot):
    client.force_login(owner)
    canonical = {r["id"]: r for r in rows(client, snapshot)}
    bio = rows(client, snapshot, export="bio", split="train")
    assert bio and {r["split"] for r in bio} == {"train"}
    for row in bio:
        text = canonical[row["id"]]["text"]
        for (start, end), tag in zip(row["offsets"], row["tags"], strict=True):
            inside = [s for s in canonical[row["id"]]["spans"] if s["start"] < end and start < s["end"]]
            assert (tag == "O") == (not inside), (text[start:end], tag)
            if inside:
                assert tag.endswith(inside[0]["label"])
        firsts = [tag for tag in row["tags"] if tag.startswith("B-")]
        assert firsts == ["B-PER", "B-LOC"]  # one B- per span, the rest of a span's tokens I-


def test_conll_and_label_studio_exports_and_a_clear_refusal(client, owner, snapshot):
    client.force_login(owner)
    response = client.get(url("snapshot-download", snapshot.project_id, snapshot.pk) + "?export=conll")
    text = b"".join(response.streaming_content).decode()
    assert "São B-LOC\nPaulo I-LOC\n" in text and "😀 O\n" in text
    download = url("snapshot-download", snapshot.project_id, snapshot.pk)
    tasks = json.loads(client.get(download + "?export=labelstudio").content)
    value = tasks[0]["annotations"][0]["result"][0]["value"]
    assert value["labels"] == ["PER"] and value["text"] in PEOPLE
    api = api_as(owner)
    bad = api.get(f"/api/projects/{snapshot.project_id}/snapshots/{snapshot.pk}/download/?export=pdf")
    assert bad.status_code == 400


def test_the_tokenizer_offsets_are_code_points():
    tokenizer = load_fast_tokenizer(model_registry().resolve("minilm"))
    text = "😀 Zoé met 🇫🇷 Zürich"
    spans = [{"start": text.index("Zürich"), "end": len(text), "label": "LOC"}]
    (row,) = bio_rows([{"id": 1, "text": text, "spans": spans}], tokenizer)
    tagged = [text[s:e] for (s, e), tag in zip(row["offsets"], row["tags"], strict=True) if tag != "O"]
    assert "".join(tagged) == "Zürich"
    assert tags_for_offsets(spans, [(0, 0), (0, 1)]) == [None, "O"]
