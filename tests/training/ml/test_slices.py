"""Per-slice figures on constructed cases: a slice the model gets all wrong is flagged, a tiny one is too small
to tell, intervals hold their point estimate, and a field with many values keeps the top 20 plus "other"."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.slices import (
    LENGTH_BAND,
    MAX_SLICE_VALUES,
    MIN_SLICE_SUPPORT,
    MISSING,
    OTHER,
    STATUS_FLAGGED,
    STATUS_OK,
    STATUS_TOO_SMALL,
    cap_values,
    classification_slices,
    generation_slices,
    length_band,
    length_edges,
    slice_groups,
)


def constructed():
    """60 "web" items all right, 40 "forum" items all wrong, 5 "email" items all wrong; two balanced labels."""
    sources = ["web"] * 60 + ["forum"] * 40 + ["email"] * 5
    y_true = np.array([i % 2 for i in range(len(sources))])
    y_pred = np.array([t if s == "web" else 1 - t for t, s in zip(y_true, sources, strict=True)])
    whole = {"accuracy": float((y_true == y_pred).mean()), "macro_f1": 0.57}
    return sources, y_true, y_pred, whole


def by_value(report, field="source"):
    entries = next(f for f in report["fields"] if f["field"] == field)["values"]
    return {entry["value"]: entry for entry in entries}


def test_a_slice_the_model_gets_all_wrong_is_flagged_and_a_tiny_one_is_too_small():
    sources, y_true, y_pred, whole = constructed()
    report = classification_slices({"source": sources}, y_true=y_true, y_pred=y_pred, whole=whole)
    entries = by_value(report)

    forum = entries["forum"]
    assert forum["support"] == 40 and forum["status"] == STATUS_FLAGGED
    assert forum["metrics"] == {"accuracy": 0.0, "macro_f1": 0.0}
    assert any("below the whole" in reason for reason in forum["reasons"])
    assert entries["web"]["status"] == STATUS_OK and entries["web"]["metrics"]["accuracy"] == 1.0

    email = entries["email"]
    assert email["support"] == 5 < MIN_SLICE_SUPPORT
    assert email["status"] == STATUS_TOO_SMALL and "too small to tell" in email["reasons"][0]

    # Worst first, the too small ones last; the worst flagged slice is named for the rounds page.
    assert [e["value"] for e in report["fields"][0]["values"]] == ["forum", "web", "email"]
    assert report["worst"]["field"] == "source" and report["worst"]["value"] == "forum"
    assert report["worst"]["gap"] == pytest.approx(0.0 - 0.57)
    assert report["flagged"] == 1 and report["primary"] == "macro_f1"


def test_intervals_contain_the_point_estimate():
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 3, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 3, 300))
    groups = {"group": list(rng.choice(["a", "b", "c"], 300))}
    report = classification_slices(groups, y_true=y_true, y_pred=y_pred, whole={"accuracy": 0.7, "macro_f1": 0.7})
    for entry in report["fields"][0]["values"]:
        for name, (low, high) in entry["intervals"].items():
            assert low <= entry["metrics"][name] <= high
            assert high - low > 0


def test_slice_macro_f1_counts_only_the_labels_in_the_slice():
    # A slice holding one label, all right: macro-F1 1.0, not dragged down by labels it cannot hold.
    report = classification_slices(
        {"source": ["x"] * 30}, y_true=np.zeros(30, int), y_pred=np.zeros(30, int), whole={"accuracy": 1, "macro_f1": 1}
    )
    assert by_value(report)["x"]["metrics"]["macro_f1"] == 1.0


def test_the_best_baseline_is_scored_on_the_same_slices():
    sources, y_true, y_pred, whole = constructed()
    report = classification_slices(
        {"source": sources}, y_true=y_true, y_pred=y_pred, whole=whole, baseline_pred=y_true, baseline_name="tfidf"
    )
    assert report["baseline"] == "tfidf"
    assert by_value(report)["forum"]["baseline"] == {"accuracy": 1.0, "macro_f1": 1.0}
    assert report["worst"]["baseline_value"] == 1.0


def test_a_field_with_many_values_keeps_the_top_20_and_pools_the_rest_as_other():
    values = [f"v{i:02d}" for i in range(30) for _ in range(30 - i)]  # v00 most frequent
    capped = cap_values(values)
    kept = set(capped) - {OTHER}
    assert len(kept) == MAX_SLICE_VALUES and kept == {f"v{i:02d}" for i in range(20)}
    assert capped.count(OTHER) == sum(30 - i for i in range(20, 30))
    assert cap_values(["a", "b"]) == ["a", "b"]


def test_groups_from_metadata_and_length_bands_by_train_tertiles():
    edges = length_edges(["x" * n for n in range(1, 31)])  # tertiles of 1..30
    assert edges == [11, 20]
    assert length_band("x" * 5, edges).startswith("short") and length_band("x" * 15, edges).startswith("medium")
    assert length_band("x" * 25, edges) == "long (> 20 chars)"
    groups = slice_groups(
        ["source", LENGTH_BAND, "tags"],
        texts=["hi", "x" * 25],
        metadata=[{"source": "web", "tags": ["a"]}, {"source": ""}],
        edges=edges,
    )
    assert groups["source"] == ["web", MISSING]
    assert groups[LENGTH_BAND][0].startswith("short") and groups[LENGTH_BAND][1].startswith("long")
    assert groups["tags"] == ['["a"]', MISSING]


def test_generation_slices_score_rouge_l_per_slice():
    rouge = np.array([0.9] * 30 + [0.0] * 30)
    report = generation_slices(
        {"source": ["good"] * 30 + ["bad"] * 30}, rouge=rouge, whole={"rouge_l": 0.45}, baseline_rouge=rouge / 2,
        baseline_name="base_model",
    )
    entries = by_value(report)
    assert entries["bad"]["status"] == STATUS_FLAGGED and entries["good"]["status"] == STATUS_OK
    assert entries["good"]["baseline"]["rouge_l"] == pytest.approx(0.45)
    assert report["worst"]["value"] == "bad" and report["primary"] == "rouge_l"


def test_the_model_card_lists_the_flagged_slices():
    from training.ml.model_card import _slices

    sources, y_true, y_pred, whole = constructed()
    report = classification_slices({"source": sources}, y_true=y_true, y_pred=y_pred, whole=whole)
    text = "\n".join(_slices(report))
    assert "### Slices" in text and "| source | forum | 40 | accuracy 0.000" in text
    assert "email" not in text.split("| field |")[1]  # too small to tell: not flagged
    assert _slices(None) == []
