"""Span agreement on constructed cases: exact-match F1, token-level F1, token-level Krippendorff's alpha."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from annotation.quality.agreement import span_agreement

TEXT = "Ada Lovelace met Charles Babbage in London"  # tokens: 0 Ada 1 Lovelace 2 met 3 Charles 4 Babbage 5 in 6 London
ADA = (0, 12, "PER")
ADA_FIRST = (0, 3, "PER")
CHARLES = (17, 32, "PER")
LONDON = (36, 42, "LOC")


def test_identical_spans_agree_fully():
    rows = [(1, "a", [ADA, LONDON]), (1, "b", [LONDON, ADA])]
    out = span_agreement(rows, {1: TEXT}, ["PER", "LOC"])
    assert out["exact_f1"] == 1.0 and out["token_f1"] == 1.0 and out["token_alpha"] == pytest.approx(1.0)
    assert out["n_items"] == 1


def test_a_boundary_disagreement_is_partial_at_token_level_and_zero_exact():
    rows = [(1, "a", [ADA, LONDON]), (1, "b", [ADA_FIRST, LONDON])]
    out = span_agreement(rows, {1: TEXT}, ["PER", "LOC"])
    # exact: LONDON matches; 2 spans each → 2·1/4
    assert out["exact_f1"] == pytest.approx(0.5)
    # tokens: a = {0 PER, 1 PER, 6 LOC}, b = {0 PER, 6 LOC} → 2·2/5
    assert out["token_f1"] == pytest.approx(0.8)
    per = {row["label"]: row for row in out["per_label"]}
    assert per["LOC"]["exact_f1"] == 1.0 and per["PER"]["exact_f1"] == 0.0
    assert per["PER"]["token_f1"] == pytest.approx(2 / 3)
    # alpha on 7 token units with values O / PER / LOC, as krippendorff computes it directly
    a = ["PER", "PER", "O", "O", "O", "O", "LOC"]
    b = ["PER", "O", "O", "O", "O", "O", "LOC"]
    code = {"O": 0, "PER": 1, "LOC": 2}
    data = np.array([[code[v] for v in a], [code[v] for v in b]], dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal", value_domain=[0, 1, 2])
    assert out["token_alpha"] == pytest.approx(expected)


def test_items_with_one_annotator_are_left_out_and_missing_figures_are_none():
    rows = [(1, "a", [ADA]), (2, "a", [CHARLES]), (2, "b", [])]
    out = span_agreement(rows, {1: TEXT, 2: TEXT}, ["PER", "LOC"])
    assert out["n_items"] == 1 and out["exact_f1"] == 0.0 and out["token_f1"] == 0.0
    per = {row["label"]: row for row in out["per_label"]}
    assert per["LOC"]["exact_f1"] is None and per["LOC"]["token_alpha"] is None  # nobody used LOC
    assert span_agreement([], {}, ["PER"])["exact_f1"] is None


def test_three_annotators_count_every_pair():
    rows = [(1, "a", [LONDON]), (1, "b", [LONDON]), (1, "c", [])]
    out = span_agreement(rows, {1: TEXT}, ["PER", "LOC"])
    # pairs: a-b tp 1 total 2; a-c 0/1; b-c 0/1 → 2·1/4
    assert out["exact_f1"] == pytest.approx(0.5)
