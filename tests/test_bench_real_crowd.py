"""The benchmarks' real crowd (bench/_data.py's VADER ratings, bench/noise.py's mode `real`): no judgement a run
routes is part of the reference label it is scored against, and the reference follows its stated rules.

Synthetic ratings, except the last test, which reads the shipped lexicon when the vaderSentiment wheel is there.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import _data  # noqa: E402
import noise as bench_noise  # noqa: E402


@pytest.mark.parametrize(
    ("ratings", "label"),
    [
        ([-2, -1, 0, 3, -4], "negative"),  # plurality
        ([1, 1, -1, -1, 0, 0], "neutral"),  # three-way tie, mean 0: neutral leads too
        ([2, 3, -1, -1], "positive"),  # tie, mean +0.75: positive leads
        ([1, -3, 0, 0, 1, -3], "negative"),  # three-way tie, mean -4/6: negative leads
        ([4, -1, -1, 4, 0, 0], "positive"),  # three-way tie, mean +1: positive
    ],
)
def test_reference_label_is_the_plurality_and_the_mean_breaks_ties(ratings, label):
    assert _data.reference_label(ratings) == label


def test_reference_tie_where_the_means_class_does_not_lead_goes_to_the_most_negative_leader():
    assert _data.reference_label([-1, -1, 1, 1, 0]) == "negative"  # mean 0 (neutral), which has one vote only


def ratings_for(n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-4, 5, size=10).tolist() for _ in range(n)]


def test_real_mode_final_is_the_agreed_label_or_the_third_judgement_and_the_reference_the_rest():
    ratings = ratings_for(400, 1)
    final, votes, audits, reference = bench_noise.simulate_real(ratings, seed=3, audit_rate=0.0)
    assert audits == []
    rng = np.random.default_rng(3)
    for i, said in enumerate(ratings):
        shuffled = [said[k] for k in rng.permutation(10)]
        rng.choice(6, size=3, replace=False)  # the pool names, drawn in the same order as simulate_real
        a, b = _data.sentiment_of(shuffled[0]), _data.sentiment_of(shuffled[1])
        if a == b:
            assert len(votes[i]) == 2 and _data.SENTIMENT[final[i]] == a
            rest = shuffled[2:]
        else:
            third = _data.sentiment_of(shuffled[2])
            assert len(votes[i]) == 3 and _data.SENTIMENT[final[i]] == third
            assert Counter(votes[i].values()) == Counter([a, b, third])
            rest = shuffled[3:]
        assert _data.SENTIMENT[reference[i]] == _data.reference_label(rest)
        assert all(name.startswith("a") for name in votes[i])


def test_an_audit_takes_the_next_judgement_and_leaves_it_out_of_the_reference():
    ratings = ratings_for(600, 2)
    final, votes, audits, reference = bench_noise.simulate_real(ratings, seed=5, audit_rate=0.5)
    assert audits, "half the agreed items are audited"
    for audit in audits:
        item = votes[audit.row]
        assert set(item) - {bench_noise.REVIEWER} and item[bench_noise.REVIEWER] == audit.decided
        assert set(audit.votes.values()) == {audit.agreed}  # an agreement was audited
        assert _data.SENTIMENT[final[audit.row]] == audit.decided
    # the reference of an audited item comes from seven ratings, never the three judgements it used
    rng = np.random.default_rng(5)
    audited = {a.row for a in audits}
    for i, said in enumerate(ratings):
        shuffled = [said[k] for k in rng.permutation(10)]
        rng.choice(6, size=3, replace=False)
        if i in audited:
            (audit,) = [a for a in audits if a.row == i]
            assert audit.decided == _data.sentiment_of(shuffled[2])  # the rating after the two annotators'
            assert _data.SENTIMENT[reference[i]] == _data.reference_label(shuffled[3:])


def test_the_shipped_lexicon_loads_ten_ratings_a_token_and_keeps_the_reference_apart():
    if importlib.util.find_spec("vaderSentiment") is None:
        pytest.skip("the vaderSentiment wheel (requirements-models.txt) is not installed")
    texts, ratings = _data.load_vader_ratings()
    assert len(texts) == len(ratings) == 7520 and {len(r) for r in ratings} == {10}
    texts_again, labels, spare = _data.load_vader()
    assert texts_again == texts and {len(s) for s in spare} == {5}
    for said, label, rest in zip(ratings[:200], labels, spare, strict=False):
        # the five spare judgements and the five held-out ratings are the token's ten
        held = Counter(_data.sentiment_of(r) for r in said) - Counter(rest)
        assert sum(held.values()) == 5 and label in held


def test_loop_lift_people_give_each_spare_judgement_once_then_reuse_and_count():
    spec = importlib.util.spec_from_file_location("bench_loop_lift", BENCH / "loop_lift.py")
    loop_lift = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop_lift)
    spare = ["negative", "negative", "neutral", "positive", "negative"]
    loop_lift.REAL_CROWD.update({"meh": spare})
    truth, probs = np.array([0]), np.array([[0.8, 0.1, 0.1]])
    people = loop_lift.People(["meh"], truth, probs, _data.SENTIMENT, seed=0)
    said = [people.says(k % 6, "meh") for k in range(4)] + [people.reviewer_says("meh")]
    assert Counter(said) == Counter(spare) and people.reused == 0
    assert people.says(0, "meh") in spare and people.reused == 1


def test_the_benches_print_how_the_count_weighed_the_ambiguity_reading_drawn_or_not():
    """A scan without enough audits never draws the ambiguity count (None); both benches' lines must still print."""
    from annotation.quality import noise

    spec = importlib.util.spec_from_file_location("bench_loop_lift_cells", BENCH / "loop_lift.py")
    loop_lift = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop_lift)
    undrawn = noise.Ambiguity(0.0, 12.0, None, None, 3, 1, None, None, "too few")
    weighed = noise.Ambiguity(0.7, 12.0, 9.4, 1.8, 60, 8, 9.1, 4.2, "weighed")
    fake = [bench_noise.noise.ScanResult(*([None] * 15))._replace(ambiguity=a) for a in (undrawn, weighed)]
    assert bench_noise.ambiguity_cell(fake[0]) == "; ambiguity weight 0.00 (model 12, ambiguity not drawn)"
    cell = bench_noise.ambiguity_cell(fake[1])
    assert cell == "; ambiguity weight 0.70 (model 12, ambiguity 9, overturns as rater 9.1 / judge 4.2)"
    assert bench_noise.ambiguity_cell(None) == ""
    assert loop_lift.ambiguity_note({**undrawn._asdict(), "weight": 0.0}) == (
        "ambiguity weight 0.0 (model 12, ambiguity not drawn); "
    )
    assert loop_lift.ambiguity_note(weighed._asdict()) == "ambiguity weight 0.7 (model 12, ambiguity 9); "
    assert loop_lift.ambiguity_note(None) == ""


def test_the_new_scans_models_are_cached_by_their_features(monkeypatch):
    assert bench_noise.features_key("vader-n1000", "words") == "vader-n1000"  # the word runs' caches stay valid
    chars = bench_noise.features_key("vader-n1000", "chars")
    assert chars.startswith("vader-n1000-chars") and chars != "vader-n1000"
    monkeypatch.setattr(bench_noise.noise, "CHAR_PREFIX", bench_noise.noise.CHAR_PREFIX + 1)
    assert bench_noise.features_key("vader-n1000", "chars") != chars  # another character block, another model
