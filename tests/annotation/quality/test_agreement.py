"""Agreement statistics checked against small cases computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import datetime as dt
import json
import random

import numpy as np
import pytest

from annotation.quality import agreement
from annotation.quality.agreement import (
    AnnotatorAccuracy,
    PairKappa,
    agreement_summary,
    agreement_trend,
    annotator_accuracy,
    annotator_confusion,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_cohen_kappa,
    per_label_agreement,
)

approx = pytest.approx

# Three raters on four items, plus a fifth item that only r1 and r2 rated:
#   item 1: a a a    item 2: a a b    item 3: a b b    item 4: b b b    item 5: a b (r1, r2)
THREE_RATERS = [
    (1, "r1", "a"), (1, "r2", "a"), (1, "r3", "a"),
    (2, "r1", "a"), (2, "r2", "a"), (2, "r3", "b"),
    (3, "r1", "a"), (3, "r2", "b"), (3, "r3", "b"),
    (4, "r1", "b"), (4, "r2", "b"), (4, "r3", "b"),
    (5, "r1", "a"), (5, "r2", "b"),
]  # fmt: skip
FINAL = {1: "a", 2: "a", 3: "b", 4: "b", 5: "b"}


def test_cohen_kappa_textbook_pair():
    # A: P P P P P P N N N N      B: P P P P N N N N N P
    # observed: items 1-4 and 7-9 agree -> p_o = 7/10
    # A says P 6/10, B says P 5/10 -> p_e = 0.6*0.5 + 0.4*0.5 = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    a = "PPPPPPNNNN"
    b = "PPPPNNNNNP"
    rows = [(i, "A", x) for i, x in enumerate(a)] + [(i, "B", x) for i, x in enumerate(b)]
    assert pairwise_cohen_kappa(rows) == [PairKappa("A", "B", approx(0.4), 10)]


def test_cohen_kappa_every_pair_of_three_raters():
    # r1-r2 share items 1-5: r1 a a a b a, r2 a a b b b; agree on 1, 2, 4 -> p_o = 3/5
    #   p_e = (4/5)(2/5) + (1/5)(3/5) = 11/25 -> kappa = (15/25 - 11/25) / (14/25) = 2/7
    # r1-r3 share items 1-4: r1 a a a b, r3 a b b b; agree on 1, 4 -> p_o = 1/2
    #   p_e = (3/4)(1/4) + (1/4)(3/4) = 3/8 -> kappa = (1/8) / (5/8) = 1/5
    # r2-r3 share items 1-4: r2 a a b b, r3 a b b b; agree on 1, 3, 4 -> p_o = 3/4
    #   p_e = (2/4)(1/4) + (2/4)(3/4) = 1/2 -> kappa = (1/4) / (1/2) = 1/2
    assert pairwise_cohen_kappa(THREE_RATERS) == [
        PairKappa("r1", "r2", approx(2 / 7), 5),
        PairKappa("r1", "r3", approx(1 / 5), 4),
        PairKappa("r2", "r3", approx(1 / 2), 4),
    ]


def test_cohen_kappa_is_none_when_undefined_or_too_few_shared_items():
    rows = [
        # A and B both said "a" on both shared items: p_e = 1, kappa = 0/0
        (1, "A", "a"), (1, "B", "a"), (2, "A", "a"), (2, "B", "a"),
        # C shares a single item with A
        (3, "A", "b"), (3, "C", "b"),
    ]  # fmt: skip
    assert pairwise_cohen_kappa(rows) == [PairKappa("A", "B", None, 2), PairKappa("A", "C", None, 1)]


def test_fleiss_kappa_uses_items_with_the_modal_rating_count():
    # Items 1-4 have 3 ratings (the modal count); item 5 has 2 and is left out.
    # P_i = (sum_j n_ij^2 - n) / (n(n-1)), n = 3:
    #   item 1: (9 + 0 - 3)/6 = 1, item 2: (4 + 1 - 3)/6 = 1/3, item 3: 1/3, item 4: 1 -> P_bar = 2/3
    # p_a = (3+2+1+0)/12 = 1/2, p_b = 1/2 -> P_e = 1/4 + 1/4 = 1/2
    # kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3
    assert fleiss_kappa(THREE_RATERS) == approx(1 / 3)


def test_fleiss_kappa_tie_between_counts_takes_the_larger():
    # Two items with 2 ratings and two with 3: the 3-rating items win the tie.
    # 3-rating items: (a a a) P=1 and (a a b) P=1/3 -> P_bar = 2/3; p_a = 5/6, p_b = 1/6
    #   P_e = 25/36 + 1/36 = 26/36 -> kappa = (24/36 - 26/36) / (10/36) = -1/5
    rows = [(1, "x", "a"), (1, "y", "a"), (1, "z", "a"), (2, "x", "a"), (2, "y", "a"), (2, "z", "b"),
            (3, "x", "b"), (3, "y", "b"), (4, "x", "a"), (4, "y", "b")]  # fmt: skip
    assert fleiss_kappa(rows) == approx(-1 / 5)


def test_blind_rows_keep_each_items_first_ratings_in_submission_order():
    # Items 1 and 2 were escalated after their blind pair disagreed: z's ratings came later, asked for *because*
    # of the disagreement; items 3-5 were agreed and never escalated.
    rows = [(1, "x", "a"), (1, "y", "b"), (2, "x", "b"), (2, "y", "a"), (3, "x", "a"), (3, "y", "a"),
            (4, "x", "b"), (4, "y", "b"), (5, "x", "a"), (5, "y", "a"), (1, "z", "a"), (2, "z", "b")]  # fmt: skip
    blind = agreement.blind_rows(rows, {1: 2, 2: 2})  # Item.blind_count: what each had when routing asked more
    assert blind == rows[:10] and agreement.blind_rows(rows, {}) == rows
    assert agreement.blind_rows(rows, {1: 2}) == [*rows[:10], rows[11]]
    # On every row, the modal rating count (2) leaves only the agreed items 3-5: perfect agreement, which it is not.
    assert fleiss_kappa(rows) == approx(1.0)
    # On the blind pairs: P_bar = 3/5, p_a = 6/10, P_e = 0.36 + 0.16 = 0.52 -> kappa = 0.08 / 0.48 = 1/6
    assert fleiss_kappa(blind) == approx(1 / 6)


def test_fleiss_kappa_undefined_cases():
    assert fleiss_kappa([(1, "x", "a"), (2, "x", "b")]) is None  # nobody rated an item twice
    assert fleiss_kappa([(1, "x", "a"), (1, "y", "a"), (2, "x", "a"), (2, "y", "a")]) is None  # P_e = 1


def test_krippendorff_alpha_nominal():
    # Coincidences, each ordered pair within an item weighted 1/(m_u - 1):
    #   item 1 (a a a): o_aa += 6/2 = 3   item 2 (a a b): o_aa += 1, o_ab += 1, o_ba += 1
    #   item 3 (a b b): o_bb += 1, o_ab += 1, o_ba += 1   item 4 (b b b): o_bb += 3
    #   item 5 (a b, m_u = 2): o_ab += 1, o_ba += 1
    # o_aa = 4, o_bb = 4, o_ab = o_ba = 3; n_a = 7, n_b = 7, n = 14
    # alpha = 1 - (n - 1) * (o_ab + o_ba) / (2 n_a n_b) = 1 - 13 * 6 / 98 = 20/98 = 10/49
    assert krippendorff_alpha(THREE_RATERS) == approx(10 / 49)
    # Without item 5: o_ab = o_ba = 2, n_a = n_b = 6, n = 12 -> 1 - 11 * 4 / 72 = 7/18
    assert krippendorff_alpha([r for r in THREE_RATERS if r[0] != 5]) == approx(7 / 18)


def test_krippendorff_alpha_interval_level_and_its_errors():
    # Values 1, 2, 3 on two items by two raters: item 1 (1, 1), item 2 (1, 3).
    # Interval metric delta^2 = (c - k)^2. Coincidences: o_11 = 2 (item 1), o_13 = o_31 = 1 (item 2).
    # n_1 = 3, n_3 = 1, n = 4; D_o = (1*4 + 1*4) / 4 = 2; D_e = (2 * 3 * 1 * 4) / (4 * 3) = 2
    # alpha = 1 - D_o / D_e = 0
    rows = [(1, "x", "1"), (1, "y", "1"), (2, "x", "1"), (2, "y", "3")]
    assert krippendorff_alpha(rows, level="interval") == approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="interval level needs numeric values"):
        krippendorff_alpha([(1, "x", "a"), (1, "y", "b")], level="interval")
    with pytest.raises(ValueError, match="must be one of"):
        krippendorff_alpha(rows, level="cosine")


def test_krippendorff_alpha_undefined_cases():
    assert krippendorff_alpha([(1, "x", "a"), (2, "y", "b")]) is None  # no item with two ratings
    assert krippendorff_alpha([(1, "x", "a"), (1, "y", "a")]) is None  # one value in use


def test_a_repeated_rating_counts_once_with_its_last_value():
    # r1 first said b on item 4, then a: only "a" counts, so item 4 is (a a) and kappa on the two items is 1.
    rows = [(3, "r1", "b"), (3, "r2", "b"), (4, "r1", "b"), (4, "r1", "a"), (4, "r2", "a")]
    assert pairwise_cohen_kappa(rows) == [PairKappa("r1", "r2", approx(1.0), 2)]


def test_per_label_agreement_binarises_multi_label_values():
    # Two raters, multi-label value keys joined with "|":
    #   item 1: "x|y" / "x"   item 2: "y" / "y"   item 3: "" / "x"   item 4: "x" / "x|y"
    # Label x as 1/0: (1,1) (0,0) (0,1) (1,1)
    #   Fleiss: P_i = 1, 1, 0, 1 -> P_bar = 3/4; p_1 = 5/8, p_0 = 3/8 -> P_e = 34/64 = 17/32
    #           kappa = (24/32 - 17/32) / (15/32) = 7/15
    #   alpha:  o_11 = 4, o_00 = 2, o_01 = o_10 = 1; n_1 = 5, n_0 = 3, n = 8
    #           alpha = 1 - 7 * 2 / (2 * 5 * 3) = 1 - 14/30 = 8/15;  support n = 5 ratings carry x
    # Label y as 1/0: (1,0) (1,1) (0,0) (0,1)
    #   Fleiss: P_i = 0, 1, 1, 0 -> P_bar = 1/2; p_1 = p_0 = 1/2 -> P_e = 1/2 -> kappa = 0
    #   alpha:  o_11 = 2, o_00 = 2, o_01 = o_10 = 2; n_1 = n_0 = 4 -> 1 - 7 * 4 / 32 = 1/8;  support 4
    rows = [(1, "A", "x|y"), (1, "B", "x"), (2, "A", "y"), (2, "B", "y"),
            (3, "A", ""), (3, "B", "x"), (4, "A", "x"), (4, "B", "x|y")]  # fmt: skip
    result = per_label_agreement(rows)
    assert result == {
        "x": {"alpha": approx(8 / 15), "fleiss": approx(7 / 15), "n": 5},
        "y": {"alpha": approx(1 / 8), "fleiss": approx(0.0, abs=1e-12), "n": 4},
    }
    # A label nobody used is listed with undefined figures: everyone said "no" (P_e = 1, one value).
    assert per_label_agreement(rows, ["x", "y", "z"])["z"] == {"alpha": None, "fleiss": None, "n": 0}


def test_per_label_agreement_matches_a_label_name_that_contains_the_separator():
    rows = [(1, "A", "a|b"), (1, "B", "a|b"), (2, "A", "c"), (2, "B", "c")]
    assert per_label_agreement(rows, ["a|b", "c"])["a|b"]["n"] == 2


def test_annotator_accuracy_against_final_labels():
    # final: 1 a, 2 a, 3 b, 4 b, 5 b
    # r1 said a a a b a -> right on 1, 2, 4 -> 3/5; r2 said a a b b b -> 5/5; r3 said a b b b on 1-4 -> 3/4
    # r4 only rated item 6, which has no final label yet -> accuracy None over 0 items
    rows = [*THREE_RATERS, (6, "r4", "a")]
    assert annotator_accuracy(rows, FINAL) == [
        AnnotatorAccuracy("r1", approx(0.6), 5),
        AnnotatorAccuracy("r2", approx(1.0), 5),
        AnnotatorAccuracy("r3", approx(0.75), 4),
        AnnotatorAccuracy("r4", None, 0),
    ]


def test_annotator_confusion_rows_are_what_the_annotator_said():
    # r1 (said/final): a/a, a/a, a/b, b/b, a/b -> said a: [final a 2, final b 2]; said b: [0, 1]
    # r3: a/a, b/a, b/b, b/b -> said a: [1, 0]; said b: [1, 2]
    # A value outside `labels` ("c") is appended to the axis rather than dropped.
    rows = [*THREE_RATERS, (7, "r2", "c")]
    confusion = annotator_confusion(rows, {**FINAL, 7: "a"}, ["a", "b"])
    assert confusion["r1"] == {"labels": ["a", "b", "c"], "matrix": [[2, 2, 0], [0, 1, 0], [0, 0, 0]]}
    assert confusion["r3"] == {"labels": ["a", "b", "c"], "matrix": [[1, 0, 0], [1, 2, 0], [0, 0, 0]]}
    assert confusion["r2"]["matrix"][2] == [1, 0, 0]  # r2 said c where the final is a
    assert set(confusion) == {"r1", "r2", "r3"}


def test_agreement_summary_is_json_and_holds_every_figure():
    summary = agreement_summary(THREE_RATERS, final=FINAL, labels=["a", "b"])
    assert json.loads(json.dumps(summary)) == summary
    # Observed agreement per item (agreeing ordered pairs / all pairs): 1, 1/3, 1/3, 1, 0 -> mean 8/15
    # Every rater agreed on items 1 and 4 of five -> full agreement 2/5
    # mean Cohen kappa over the three pairs: (2/7 + 1/5 + 1/2) / 3
    assert summary["overall"] == {
        "fleiss_kappa": approx(1 / 3),
        "krippendorff_alpha": approx(10 / 49),
        "percent_agreement": approx(8 / 15),
        "full_agreement": approx(2 / 5),
        "mean_cohen_kappa": approx((2 / 7 + 1 / 5 + 1 / 2) / 3),
    }
    assert summary["percent_agreement"] == approx(8 / 15)
    assert (summary["n_items"], summary["n_items_multi"], summary["n_annotations"], summary["n_annotators"]) == (
        5, 5, 14, 3,
    )  # fmt: skip
    assert summary["pairs"][0] == {"annotator_a": "r1", "annotator_b": "r2", "kappa": approx(2 / 7), "n_items": 5}
    assert summary["annotators"][2] == {"annotator": "r3", "accuracy": 0.75, "n": 4}
    assert summary["confusion"]["r1"]["matrix"] == [[2, 2], [0, 1]]
    # Single-label: "a" one-vs-rest is the same data as a/b, so it repeats the overall figures; support 7.
    assert summary["per_label"]["a"] == {"alpha": approx(10 / 49), "fleiss": approx(1 / 3), "n": 7}


def test_agreement_summary_without_final_labels_or_rows():
    assert "annotators" not in agreement_summary(THREE_RATERS)
    empty = agreement_summary([])
    assert empty["n_items"] == 0
    assert empty["overall"] == dict.fromkeys(
        ("fleiss_kappa", "krippendorff_alpha", "percent_agreement", "full_agreement", "mean_cohen_kappa")
    )


def test_agreement_trend_counts_an_item_in_the_period_it_was_completed():
    monday = dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC)
    tuesday = monday + dt.timedelta(days=1)
    rows = [
        (1, "A", "x", monday), (1, "B", "x", monday),
        (2, "A", "x", monday), (2, "B", "y", monday),
        (3, "A", "x", monday), (3, "B", "y", tuesday),  # completed on Tuesday
        (4, "A", "y", tuesday), (4, "B", "y", tuesday),
        (5, "A", "x", tuesday), (5, "B", "x", tuesday),
        (6, "A", "x", tuesday),  # one rating: no agreement to measure
    ]  # fmt: skip
    # Monday: items 1 (x x), 2 (x y). percent = (1 + 0)/2 = 1/2
    #   o_xx = 2, o_xy = o_yx = 1; n_x = 3, n_y = 1, n = 4 -> alpha = 1 - 3 * 2 / (2 * 3 * 1) = 0
    # Tuesday: items 3 (x y), 4 (y y), 5 (x x). percent = 2/3
    #   o_xx = 2, o_yy = 2, o_xy = o_yx = 1; n_x = n_y = 3, n = 6 -> alpha = 1 - 5 * 2 / 18 = 4/9
    assert agreement_trend(rows) == [
        {"period": "2025-03-03", "alpha": approx(0.0, abs=1e-12), "percent_agreement": approx(0.5), "n_items": 2},
        {"period": "2025-03-04", "alpha": approx(4 / 9), "percent_agreement": approx(2 / 3), "n_items": 3},
    ]
    # Week buckets are named by their Monday; all five items fall in the week of 3 March.
    # Pooled: o_xx = 4, o_yy = 2, o_xy = o_yx = 2; n_x = 6, n_y = 4, n = 10 -> 1 - 9 * 4 / 48 = 1/4
    weekly = agreement_trend([(i, a, v, t + dt.timedelta(days=2)) for i, a, v, t in rows], bucket="week")
    assert weekly == [
        {"period": "2025-03-03", "alpha": approx(1 / 4), "percent_agreement": approx(3 / 5), "n_items": 5}
    ]
    monthly = agreement_trend(rows, bucket="month")
    assert [p["period"] for p in monthly] == ["2025-03-01"]
    with pytest.raises(ValueError, match=agreement.UNKNOWN_BUCKET.split("{")[0]):
        agreement_trend(rows, bucket="hour")


@pytest.mark.parametrize("seed", range(5))
def test_numpy_kappa_and_confusion_match_scikit_learn(seed):
    """agreement.py computes these without scikit-learn (kept out of web processes); same figures."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c", "d"]
    y1 = list(rng.choice(labels, 40))
    y2 = [v if rng.random() < 0.6 else str(rng.choice(labels)) for v in y1]
    assert agreement._cohen_kappa(y1, y2) == pytest.approx(cohen_kappa_score(y1, y2))
    axis = sorted(set(y1) | set(y2))
    assert agreement._confusion(y1, y2, axis).tolist() == confusion_matrix(y1, y2, labels=axis).tolist()


def test_rouge_l_matches_the_reference_implementation_and_reads_any_script():
    from rouge_score import rouge_scorer

    from annotation.quality.agreement import response_tokens, rouge_l

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rng = random.Random(0)
    words = ["the", "a", "cat", "dog", "sat", "on", "mat", "and", "ran", "far", "away"]
    for _ in range(200):
        a = [rng.choice(words) for _ in range(rng.randint(1, 30))]
        b = [rng.choice(words) for _ in range(rng.randint(1, 30))]
        expected = scorer.score(" ".join(b), " ".join(a))["rougeL"].fmeasure
        assert rouge_l(a, b) == pytest.approx(expected)
    # rouge_score keeps only a-z and 0-9: two identical Russian answers scored 0 there
    assert rouge_l(response_tokens("Привет, мир!"), response_tokens("привет мир")) == 1.0
    assert response_tokens("你好 world") == ["你", "好", "world"]
    assert rouge_l([], []) == 1.0 and rouge_l(["a"], []) == 0.0


def test_response_agreement_gives_an_interval_from_ten_items_and_counts_judged_finals_only():
    from annotation.quality.agreement import INTERVAL_MIN_ITEMS, response_agreement

    rows = []
    for i in range(INTERVAL_MIN_ITEMS):
        rows += [(i, "ann", f"the answer is {i}"), (i, "bob", f"an answer is {i} or so")]
    judged = {i: f"the answer is {i}" for i in range(3)}
    result = response_agreement(rows, judged)
    pair = result["pairs"][0]
    assert pair["n"] == INTERVAL_MIN_ITEMS and pair["low"] is not None
    assert pair["low"] <= pair["mean"] <= pair["high"]
    ann, bob = result["annotators"]
    assert (ann["n"], ann["kept"], ann["mean"], ann["low"]) == (3, 1.0, 1.0, None)  # three: no interval
    assert bob["kept"] == 0.0 and bob["mean"] < 1
    assert response_agreement(rows[:-2], judged)["pairs"][0]["low"] is None  # nine items
