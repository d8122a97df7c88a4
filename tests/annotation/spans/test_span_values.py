"""Span values (annotation/tasktypes.py): offsets in code points against the exact text, checked and canonical."""

from __future__ import annotations

import pytest

from annotation.tasktypes import (
    SPAN_EMPTY,
    SPAN_OUT_OF_TEXT,
    SPAN_TEXT_MISMATCH,
    SPAN_UNKNOWN_LABEL,
    SPANS_NOT_JSON,
    SPANS_OVERLAP,
    InvalidValue,
    Spans,
    span_key_parse,
    span_segments,
    task_kind,
    value_display,
    value_key,
    word_tokens,
)
from tests.fixtures.spans import SPAN_TEXTS, span

KIND = Spans()
LABELS = ["PER", "LOC"]
EMOJI = SPAN_TEXTS[1]  # "😀 Zoé flew to Paris 🇫🇷 with Marie Curie." with a combining accent


def test_offsets_are_code_points_past_emoji_and_combining_marks():
    zoe = span(EMOJI, "Zoe\u0301", "PER")
    paris = span(EMOJI, "Paris", "LOC")
    assert zoe == {"start": 2, "end": 6, "label": "PER"}  # the emoji is one code point, the accent another
    value = KIND.normalise({"spans": [paris, zoe]}, LABELS, text=EMOJI)
    assert value == {"spans": [zoe, paris]}  # sorted by offset
    assert [EMOJI[s["start"]:s["end"]] for s in value["spans"]] == ["Zoe\u0301", "Paris"]


def test_a_quoted_text_must_match_the_offsets_which_catches_utf16_offsets():
    at = EMOJI.index("Paris")
    utf16_start = len(EMOJI[:at].encode("utf-16-le")) // 2  # "😀" counts twice in UTF-16
    assert utf16_start == at + 1
    wrong = {"start": utf16_start, "end": utf16_start + 5, "label": "LOC", "text": "Paris"}
    with pytest.raises(InvalidValue) as exc:
        KIND.normalise({"spans": [wrong]}, LABELS, text=EMOJI)
    assert str(exc.value).startswith(SPAN_TEXT_MISMATCH.split("{")[0])
    right = {**span(EMOJI, "Paris", "LOC"), "text": "Paris"}
    assert KIND.normalise({"spans": [right]}, LABELS, text=EMOJI)["spans"][0]["start"] == EMOJI.index("Paris")


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        ([{"start": 0, "end": 999, "label": "PER"}], SPAN_OUT_OF_TEXT),
        ([{"start": -1, "end": 2, "label": "PER"}], SPAN_OUT_OF_TEXT),
        ([{"start": 3, "end": 3, "label": "PER"}], SPAN_EMPTY),
        ([{"start": 0, "end": 3, "label": "ORG"}], SPAN_UNKNOWN_LABEL),
        ([{"start": 0, "end": 3, "label": "PER"}, {"start": 2, "end": 5, "label": "LOC"}], SPANS_OVERLAP),
    ],
)
def test_bad_spans_are_refused_naming_the_problem(spans, message):
    with pytest.raises(InvalidValue) as exc:
        KIND.normalise({"spans": spans}, LABELS, text=SPAN_TEXTS[0])
    assert exc.value.field == "spans"
    assert str(exc.value).startswith(message.split("{")[0])


def test_overlap_is_allowed_when_the_project_allows_it_and_duplicates_collapse():
    text = SPAN_TEXTS[0]
    spans = [span(text, "Ada Lovelace", "PER"), span(text, "Ada", "PER"), span(text, "Ada", "PER")]
    value = KIND.normalise({"spans": spans}, LABELS, text=text, allow_overlap=True)
    assert value["spans"] == [span(text, "Ada", "PER"), span(text, "Ada Lovelace", "PER")]


def test_shapes_and_form_posts():
    with pytest.raises(InvalidValue) as exc:
        KIND.normalise(KIND.value_from_form({"spans": "[{"}), LABELS, text="x")
    assert str(exc.value).startswith(SPANS_NOT_JSON.split("{")[0])
    assert KIND.value_from_form({"spans": '[{"start": 0, "end": 1, "label": "PER"}]'})["spans"][0]["end"] == 1
    assert KIND.normalise({"spans": []}, LABELS, text="x") == {"spans": []}
    for bad in ({"spans": [{"start": "0", "end": 1, "label": "PER"}]}, {"spans": {}}, {"spans": [True]}):
        with pytest.raises(InvalidValue):
            KIND.normalise(bad, LABELS, text="xyz")


def test_the_key_is_canonical_so_exact_agreement_compares_keys():
    text = SPAN_TEXTS[0]
    a = KIND.normalise({"spans": [span(text, "London", "LOC"), span(text, "Ada", "PER")]}, LABELS, text=text)
    b = KIND.normalise({"spans": [span(text, "Ada", "PER"), span(text, "London", "LOC")]}, LABELS, text=text)
    assert value_key(a) == value_key(b) and task_kind("spans") is not None
    assert span_key_parse(value_key(a)) == [(0, 3, "PER"), (36, 42, "LOC")]
    assert value_display(a) == "PER 0-3, LOC 36-42"
    assert value_display(a, text) == "Ada (PER), London (LOC)"  # the item's text: what each span covers
    assert value_display(a, "short") == "sho (PER), LOC 36-42"  # a span past the text stays offsets


def test_words_and_segments_cut_at_code_points():
    tokens = word_tokens(EMOJI)
    assert [EMOJI[s:e] for s, e in tokens][:4] == ["😀", "Zoe\u0301", "flew", "to"]
    segments = span_segments("Ada Lovelace", [{"start": 0, "end": 2, "label": "PER"}])
    assert [(s, e, word) for s, e, word, _ in segments] == [(0, 2, True), (2, 3, True), (3, 4, False), (4, 12, True)]
    assert "".join(piece for *_, piece in span_segments(EMOJI)) == EMOJI
