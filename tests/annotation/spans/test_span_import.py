"""Importing spans in the formats users bring: JSONL with offsets, CoNLL/BIO, Label Studio's JSON export;
exporting them back; a bad span names its row and imports nothing."""

from __future__ import annotations

import io
import json

import pytest

from annotation.imports import services as svc
from annotation.imports.span_formats import (
    BAD_TAG,
    code_points_to_utf16,
    spans_from_tags,
    tags_for,
    to_conll,
    to_label_studio,
)
from annotation.models import Decision, ImportStatus, Item, LabelsAs
from annotation.tasktypes import SPAN_TEXT_MISMATCH, word_tokens
from tests.fixtures.spans import SPAN_TEXTS, span, span_project

EMOJI = SPAN_TEXTS[1]


@pytest.fixture
def spans_project(owner):
    project = span_project(owner)
    Item.objects.filter(project=project).delete()
    return project


def run(project, user, data: bytes, name: str, **kwargs):
    return svc.import_create(project=project, user=user, file_name=name, fileobj=io.BytesIO(data), **kwargs)


def items(project) -> dict[str, Item]:
    return {item.text: item for item in Item.objects.filter(project=project)}


def test_jsonl_with_offsets_and_doccano_triples(spans_project, owner):
    rows = [
        {"id": "a", "text": EMOJI, "spans": [{**span(EMOJI, "Paris", "LOC"), "text": "Paris"}]},
        {"id": "b", "text": SPAN_TEXTS[0], "spans": [[0, 12, "PER"], [36, 42, "LOC"]]},  # doccano's triples
    ]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    job = run(spans_project, owner, data, "spans.jsonl")
    assert job.status == ImportStatus.SUCCEEDED, job.errors
    got = items(spans_project)
    assert got[EMOJI].prelabel == {"spans": [span(EMOJI, "Paris", "LOC")]}
    assert [SPAN_TEXTS[0][s["start"]:s["end"]] for s in got[SPAN_TEXTS[0]].prelabel["spans"]] == [
        "Ada Lovelace",
        "London",
    ]


def test_a_span_whose_text_does_not_match_imports_nothing_and_names_the_line(spans_project, owner):
    rows = [
        {"text": SPAN_TEXTS[0], "spans": [[0, 3, "PER"]]},
        {"text": EMOJI, "spans": [{"start": 0, "end": 3, "label": "PER", "text": "Zoé"}]},
        {"text": SPAN_TEXTS[2], "spans": [[0, 4, "PER"], [2, 6, "LOC"]]},
    ]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    job = run(spans_project, owner, data, "spans.jsonl")
    assert job.status == ImportStatus.FAILED and not Item.objects.filter(project=spans_project).exists()
    by_line = {e["line"]: e["message"] for e in job.errors}
    assert by_line[2] == "spans.jsonl line 2, field 'spans': " + SPAN_TEXT_MISMATCH.format(
        n=1, start=0, end=3, said="Zoé", found="😀 Z"
    )
    assert by_line[3].startswith("spans.jsonl line 3, field 'spans': Spans 0-4 PER and 2-6 LOC overlap")


def test_conll_bio_becomes_text_with_offsets(spans_project, owner):
    data = (
        "-DOCSTART- O\n\n"
        "Zoé B-PER\nflew O\nto O\nSão B-LOC\nPaulo I-LOC\n\n"
        "Marie B-PER\nCurie I-PER\nmet O\nPierre B-PER\n"
    ).encode()
    job = run(spans_project, owner, data, "train.conll", labels_as=LabelsAs.FINAL)
    assert job.status == ImportStatus.SUCCEEDED, job.errors
    got = items(spans_project)
    text = "Zoé flew to São Paulo"
    assert Decision.objects.get(item=got[text]).value == {
        "spans": [span(text, "Zoé", "PER"), span(text, "São Paulo", "LOC")]
    }
    final = Decision.objects.get(item=got["Marie Curie met Pierre"]).value
    assert final == {"spans": [{"start": 0, "end": 11, "label": "PER"}, {"start": 16, "end": 22, "label": "PER"}]}


def test_a_bad_tag_is_named(spans_project, owner):
    job = run(spans_project, owner, b"Ada X-PER\n", "bad.bio")
    assert job.status == ImportStatus.FAILED
    assert job.errors[0]["message"] == "bad.bio line 1, field 'tag': " + BAD_TAG.format(tag="X-PER")


def test_label_studio_export_with_utf16_offsets(spans_project, owner):
    # Label Studio's browser counts UTF-16 units: "😀" is two, so Zoé starts at 3, not 2.
    units = code_points_to_utf16(EMOJI)
    zoe = span(EMOJI, "Zoe\u0301", "PER")
    tasks = [
        {
            "id": 41,
            "data": {"text": EMOJI, "source": "news"},
            "annotations": [
                {"was_cancelled": True, "result": []},
                {
                    "result": [
                        {
                            "from_name": "label", "to_name": "text", "type": "labels",
                            "value": {"start": units[zoe["start"]], "end": units[zoe["end"]], "text": "Zoe\u0301",
                                      "labels": ["PER"]},
                        },
                        {"from_name": "sentiment", "type": "choices", "value": {"choices": ["pos"]}},
                    ]
                },
            ],
        },
        {"id": 42, "data": {"text": SPAN_TEXTS[2]}, "predictions": [{"result": []}]},
    ]
    job = run(spans_project, owner, json.dumps(tasks).encode(), "export.json")
    assert job.status == ImportStatus.SUCCEEDED, job.errors
    got = items(spans_project)
    assert units[zoe["start"]] == zoe["start"] + 1
    assert got[EMOJI].prelabel == {"spans": [zoe]} and got[EMOJI].external_id == "41"
    assert got[EMOJI].metadata == {"source": "news"}


def test_label_studio_tasks_without_text_are_named(spans_project, owner):
    job = run(spans_project, owner, json.dumps([{"data": {"image": "x.png"}}]).encode(), "export.json")
    assert job.status == ImportStatus.FAILED and "has no text" in job.errors[0]["message"]


def test_bio_round_trip_and_exports():
    tokens, tags = ["Zoé", "flew", "to", "São", "Paulo"], ["B-PER", "O", "O", "B-LOC", "I-LOC"]
    text, spans = spans_from_tags(tokens, tags)
    assert tags_for(text, spans, word_tokens(text)) == tags
    assert "".join(to_conll([(text, spans)])) == "".join(f"{t} {g}\n" for t, g in zip(tokens, tags, strict=True)) + "\n"
    # BIOES and an I- that starts a span (as conlleval reads it)
    assert spans_from_tags(["a", "b", "c"], ["S-PER", "I-LOC", "E-LOC"])[1] == [
        {"start": 0, "end": 1, "label": "PER"},
        {"start": 2, "end": 5, "label": "LOC"},
    ]
    zoe = span(EMOJI, "Zoe\u0301", "PER")
    task = to_label_studio([{"id": 1, "external_id": "", "text": EMOJI, "spans": [zoe]}])[0]
    value = task["annotations"][0]["result"][0]["value"]
    assert value["start"] == zoe["start"] + 1 and value["text"] == "Zoe\u0301"  # UTF-16 units, as JS counts


def test_a_large_label_studio_export_says_why_it_cannot_be_previewed(spans_project, owner, monkeypatch):
    from annotation.imports import span_formats
    from core.errors import ServiceError

    monkeypatch.setattr(svc, "PREVIEW_MAX_BYTES", 64)
    tasks = json.dumps([{"data": {"text": SPAN_TEXTS[0]}}] * 5).encode()
    with pytest.raises(ServiceError) as exc:
        svc.import_preview(project=spans_project, user=owner, file_name="big.json", fileobj=io.BytesIO(tasks))
    assert "cannot be previewed" in exc.value.message
    monkeypatch.setattr(span_formats, "MAX_LABEL_STUDIO_BYTES", 64)
    job = run(spans_project, owner, tasks, "big.json")
    assert job.status == ImportStatus.FAILED and "too large to read whole" in job.errors[0]["message"]
