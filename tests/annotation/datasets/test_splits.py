"""Split assignment: stratified, seeded, leakage-free, stable (examples and hypothesis properties)."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation.datasets import splits
from annotation.datasets.splits import SPLITS, assign, balance_report, class_balance, near_duplicate_pairs

RATIOS = (0.8, 0.1, 0.1)
LONG = (
    "The delivery arrived two days late and the box was damaged, but the support team answered quickly "
    "and sent a replacement without asking for a receipt."
)


def random_text(i: int) -> str:
    """Texts with no shared 5-grams to speak of: no accidental near-duplicates."""
    return hashlib.blake2b(str(i).encode(), digest_size=16).hexdigest()


def counts(assignment: dict, labels: dict) -> dict[str, Counter]:
    out = {s: Counter() for s in SPLITS}
    for key, split in assignment.items():
        out[split][labels[key]] += 1
    return out


def test_stratifies_each_label_to_the_ratios():
    # 20 "a" and 10 "b": targets a 16 / 2 / 2, b 8 / 1 / 1 - exact, since every target is whole.
    labels = ["a"] * 20 + ["b"] * 10
    keys = list(range(30))
    result = assign(keys, labels, [None] * 30, [random_text(i) for i in keys], seed=1)
    assert counts(result, dict(zip(keys, labels, strict=True))) == {
        "train": Counter(a=16, b=8),
        "validation": Counter(a=2, b=1),
        "test": Counter(a=2, b=1),
    }


def test_a_split_with_ratio_zero_gets_nothing():
    keys = list(range(50))
    result = assign(keys, ["x"] * 50, [None] * 50, [random_text(i) for i in keys], seed=0, ratios=(0.7, 0.3, 0.0))
    assert Counter(result.values()) == Counter(train=35, validation=15)


def test_group_members_share_a_split_and_the_seed_picks_which():
    keys = [f"k{i}" for i in range(40)]
    groups = ["user-1"] * 8 + [None] * 32
    texts = [random_text(i) for i in range(40)]
    seen = set()
    for seed in range(12):
        result = assign(keys, ["a"] * 40, groups, texts, seed=seed)
        assert len({result[k] for k in keys[:8]}) == 1
        seen.add(result["k0"])
    assert seen == {"train"}  # 8 of 40 items is within train's share only
    # A group as large as the test share can be placed there.
    small = assign(keys, ["a"] * 40, ["g"] * 4 + [None] * 36, texts, seed=3)
    assert len({small[k] for k in keys[:4]}) == 1


def test_exact_duplicates_after_normalisation_share_a_split():
    texts = [random_text(i) for i in range(60)]
    texts[10] = "Great  PRODUCT, would buy again"
    texts[50] = "great product, would buy again"
    for seed in range(10):
        result = assign(list(range(60)), ["a"] * 60, [None] * 60, texts, seed=seed)
        assert result[10] == result[50]


def test_near_duplicates_share_a_split_unless_disabled():
    texts = [random_text(i) for i in range(40)]
    texts[3] = LONG
    texts[30] = LONG.replace("two days", "two dayz")  # one character: 5-gram Jaccard 0.937
    assert near_duplicate_pairs([LONG, texts[30]]) == [(0, 1)]
    together, apart = set(), set()
    for seed in range(30):
        with_near = assign(list(range(40)), ["a"] * 40, [None] * 40, texts, seed=seed)
        together.add(with_near[3] == with_near[30])
        without = assign(list(range(40)), ["a"] * 40, [None] * 40, texts, seed=seed, near_duplicate_threshold=None)
        apart.add(without[3] == without[30])
    assert together == {True}
    assert apart == {True, False}  # without the check, the seed alone decides


def test_near_duplicate_pairs_respects_the_threshold_exactly():
    # 5-gram Jaccard similarities of LONG with each variant (computed from the shingle sets):
    variants = [LONG + "!", LONG.replace("late", "LATE"), "Something else entirely, about a camera."]
    j = [splits._jaccard(splits._shingles(LONG), splits._shingles(v)) for v in variants]
    assert j[0] >= 0.99 and 0.85 < j[1] < 0.9 and j[2] < 0.1
    assert near_duplicate_pairs([LONG, *variants], threshold=0.9) == [(0, 1)]
    assert near_duplicate_pairs([LONG, *variants], threshold=0.85) == [(0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize("n_words", [3, 12, 60])
def test_near_duplicate_pairs_finds_every_one_edit_copy_at_or_above_the_threshold(n_words):
    # Short texts have few shingles and many empty MinHash bins: the densified sketch must still
    # propose their one-edit copies. Every pair is checked against its exact Jaccard similarity.
    rng = random.Random(n_words)
    words = [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliet",
        "kilo",
        "lima",
        "mike",
    ]
    texts = [" ".join(rng.choice(words) for _ in range(n_words)) + f" no. {k}" for k in range(250)]
    for k in range(250):
        i = rng.randrange(len(texts[k]))
        texts.append(texts[k] + "." if k % 2 else texts[k][:i] + "#" + texts[k][i + 1 :])
    expected = {
        (k, 250 + k)
        for k in range(250)
        if splits._jaccard(splits._shingles(texts[k]), splits._shingles(texts[250 + k])) >= 0.9
    }
    assert len(expected) > 100
    found = set(near_duplicate_pairs(texts, 0.9))
    assert expected <= found
    for i, j in found:
        assert splits._jaccard(splits._shingles(texts[i]), splits._shingles(texts[j])) >= 0.9


def test_existing_items_keep_their_split_and_pull_their_group():
    keys = list(range(30))
    groups = [None] * 30
    groups[0] = groups[1] = groups[2] = "session-9"
    result = assign(
        keys, ["a"] * 30, groups, [random_text(i) for i in keys], seed=0, existing={0: "test", 7: "validation"}
    )
    assert result[0] == result[1] == result[2] == "test"
    assert result[7] == "validation"


def test_a_new_item_joining_two_assigned_splits_follows_the_majority_then_test():
    texts = [random_text(i) for i in range(6)]
    texts[5] = texts[0] = texts[1] = "same words"
    existing = {0: "train", 1: "validation"}
    # Items 0 and 1 keep their (conflicting) splits; the new duplicate 5 goes to the tie's preference.
    result = assign(list(range(6)), ["a"] * 6, [None] * 6, texts, seed=0, existing=existing)
    assert (result[0], result[1], result[5]) == ("train", "validation", "validation")
    texts[2] = "same words"
    result = assign(list(range(6)), ["a"] * 6, [None] * 6, texts, seed=0, existing={**existing, 2: "train"})
    assert result[5] == "train"  # two of three assigned duplicates are in train


def test_the_result_ignores_input_order():
    rng = random.Random(5)
    rows = [(f"k{i}", rng.choice("abc"), rng.choice([None, "g1", "g2"]), random_text(i)) for i in range(120)]
    first = assign(*map(list, zip(*rows, strict=True)), seed=4)
    rng.shuffle(rows)
    assert assign(*map(list, zip(*rows, strict=True)), seed=4) == first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": ["a"]}, "one entry per item"),
        ({"keys": [1, 1]}, splits.DUPLICATE_KEY.format(key=1)),
        ({"ratios": (0.5, 0.5, 0.5)}, "add up to 1"),
        ({"ratios": (1.2, -0.1, -0.1)}, "non-negative"),
        ({"existing": {1: "holdout"}}, "split 'holdout'"),
        ({"near_duplicate_threshold": 0.3}, "between 0.6 and 1"),
    ],
)
def test_bad_input_is_refused_with_a_message(kwargs, message):
    args = {"keys": [1, 2], "labels": ["a", "b"], "groups": [None, None], "texts": ["x", "y"], "seed": 0}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        assign(**{**args, **kwargs})


def test_empty_input_gives_an_empty_assignment():
    assert assign([], [], [], [], seed=0) == {}


def test_balance_report_counts_and_ratios():
    assignment = {1: "train", 2: "train", 3: "train", 4: "validation"}
    report = balance_report(assignment, {1: "a", 2: "b", 3: "a", 4: "a"})
    assert report == {
        "counts": {"train": {"a": 2, "b": 1}, "validation": {"a": 1}, "test": {}},
        "totals": {"train": 3, "validation": 1, "test": 0},
        "ratios": {"train": 0.75, "validation": 0.25, "test": 0.0},
    }
    assert json.loads(json.dumps(report)) == report


def test_class_balance_modes():
    labels = ["a", "a", "a", "b", "a", "b"]  # a: 4, b: 2
    none = class_balance(labels)
    assert none["keep"] is None and none["class_weights"] is None
    assert none["report"] == {"before": {"a": 4, "b": 2}, "after": {"a": 4, "b": 2}, "imbalance_ratio": 2.0}

    down = class_balance(labels, "downsample", seed=1)
    assert Counter(labels[i] for i in down["keep"]) == Counter(a=2, b=2)
    assert {3, 5} <= set(down["keep"]) and down["keep"] == sorted(down["keep"])
    assert down == class_balance(labels, "undersample", seed=1) | {"mode": "downsample"}

    up = class_balance(labels, "oversample", seed=1)
    assert Counter(labels[i] for i in up["keep"]) == Counter(a=4, b=4)
    assert {0, 1, 2, 4} <= set(up["keep"])

    # sklearn's balanced weights: n / (k * n_label) = 6 / (2 * 4) = 0.75 for a, 6 / (2 * 2) = 1.5 for b
    weighted = class_balance(labels, "class_weights")
    assert weighted["class_weights"] == {"a": pytest.approx(0.75), "b": pytest.approx(1.5)}
    for result in (none, down, up, weighted):
        assert json.loads(json.dumps(result)) == result
    with pytest.raises(ValueError, match="must be one of"):
        class_balance(labels, "smote")


# --- Properties -----------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ratio_choices = st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.6, 0.2, 0.2), (0.5, 0.5, 0.0), (1 / 3,) * 3])
label_lists = st.lists(st.sampled_from(["pos", "neg", "neutral", "spam"]), max_size=150)


@PROPERTY_SETTINGS
@given(labels=label_lists, ratios=ratio_choices, seed=st.integers(0, 2**31))
def test_property_stratified_within_one_item_per_label_and_split(labels, ratios, seed):
    keys = list(range(len(labels)))
    result = assign(keys, labels, [None] * len(keys), [random_text(i) for i in keys], seed, ratios=ratios)
    per_split = counts(result, dict(zip(keys, labels, strict=True)))
    totals = Counter(labels)
    for s, ratio in zip(SPLITS, ratios, strict=True):
        for label, n in totals.items():
            assert abs(per_split[s][label] - ratio * n) < 1 + 1e-9


@PROPERTY_SETTINGS
@given(
    rows=st.lists(
        st.tuples(st.sampled_from("ab"), st.sampled_from([None, "g1", "g2", "g3", "g4"]), st.integers(0, 12)),
        max_size=120,
    ),
    seed=st.integers(0, 1000),
)
def test_property_groups_and_duplicates_never_straddle_splits(rows, seed):
    # Text ids 0-3 are written as case/space variants of one sentence, so they are exact duplicates.
    def text(t: int, i: int) -> str:
        return ["Same  Sentence here", "same sentence HERE"][i % 2] if t < 4 else f"{random_text(t)}"

    keys = list(range(len(rows)))
    texts = [text(t, i) for i, (_, _, t) in enumerate(rows)]
    result = assign(keys, [r[0] for r in rows], [r[1] for r in rows], texts, seed)
    by_group: dict[str, set[str]] = {}
    by_text: dict[str, set[str]] = {}
    for key, (_, group, _) in zip(keys, rows, strict=True):
        if group:
            by_group.setdefault(group, set()).add(result[key])
        by_text.setdefault(texts[key].casefold().replace("  ", " "), set()).add(result[key])
    assert all(len(s) == 1 for s in by_group.values())
    assert all(len(s) == 1 for s in by_text.values())


@PROPERTY_SETTINGS
@given(
    old=st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from([None, "g1", "g2"])), max_size=80),
    new=st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from([None, "g1", "g2", "g3"])), max_size=80),
    seed=st.integers(0, 1000),
    ratios=ratio_choices,
)
def test_property_deterministic_and_stable_when_items_are_added(old, new, seed, ratios):
    rows = old + new
    keys = [f"item-{i}" for i in range(len(rows))]
    texts = [random_text(i) for i in range(len(rows))]
    labels, groups = [r[0] for r in rows], [r[1] for r in rows]
    n_old = len(old)
    first = assign(keys[:n_old], labels[:n_old], groups[:n_old], texts[:n_old], seed, ratios=ratios)
    assert first == assign(keys[:n_old], labels[:n_old], groups[:n_old], texts[:n_old], seed, ratios=ratios)
    later = assign(keys, labels, groups, texts, seed, ratios=ratios, existing=first)
    assert all(later[k] == first[k] for k in keys[:n_old])
    for group in {"g1", "g2", "g3"}:  # new members follow the group's existing split
        assert len({later[k] for k, g in zip(keys, groups, strict=True) if g == group}) <= 1


def test_fingerprints_streamed_in_chunks_give_the_same_splits_as_the_texts():
    rng = random.Random(3)
    base = [" ".join(rng.choice(["red", "blue", "green", "cat", "dog", "sky"]) for _ in range(12)) for _ in range(300)]
    texts = base + [t + "!" for t in base[:40]] + [t.upper() for t in base[40:60]]  # near and exact duplicates
    keys = list(range(len(texts)))
    labels = [rng.choice("ab") for _ in texts]
    groups = [None] * len(texts)
    fetched: list[int] = []

    def texts_of(indices: list[int]) -> list[str]:
        fetched.extend(indices)
        return [texts[i] for i in indices]

    chunks = (texts[a : a + 64] for a in range(0, len(texts), 64))
    prints = splits.fingerprints_of(chunks, texts_of)
    assert len(prints) == len(texts) and prints.band_keys.shape == (splits.BANDS, len(texts))
    assert assign(keys, labels, groups, prints, seed=7) == assign(keys, labels, groups, texts, seed=7)
    assert 0 < len(set(fetched)) < len(texts)  # only candidate pairs' texts were fetched again
    for expected in (0, 100, len(texts), 1000):  # the arrays grow or are trimmed to what arrived
        chunks = (texts[a : a + 64] for a in range(0, len(texts), 64))
        again = splits.fingerprints_of(chunks, texts_of, expected=expected)
        assert np.array_equal(again.hashes, prints.hashes) and np.array_equal(again.band_keys, prints.band_keys)
    no_bands = splits.fingerprints_of(iter([texts]), texts_of, near_duplicates=False)
    with pytest.raises(ValueError, match="band keys"):
        assign(keys, labels, groups, no_bands, seed=7)
    assert assign(keys, labels, groups, no_bands, seed=7, near_duplicate_threshold=None) == assign(
        keys, labels, groups, texts, seed=7, near_duplicate_threshold=None
    )


def test_candidate_pairs_are_those_of_a_stable_argsort():
    """The packed (key, index) sort must give exactly what a stable argsort of the band keys gives."""
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 40, size=(splits.BANDS, 3000)).astype(np.uint32)  # big buckets: the cap applies
    keys[:, :100] = rng.integers(2**32 - 3, 2**32, size=(splits.BANDS, 100))  # keys near the top bit

    def reference(keys: np.ndarray) -> np.ndarray:
        found = []
        for band_keys in keys:
            order = np.argsort(band_keys, kind="stable")
            ordered = band_keys[order]
            same_as_next = ordered[1:] == ordered[:-1]
            edge = np.concatenate(([False], same_as_next)) | np.concatenate((same_as_next, [False]))
            in_bucket = np.flatnonzero(edge)
            members, bucket = order[in_bucket], ordered[in_bucket]
            for step in range(1, min(splits.MAX_PAIRS_PER_ITEM, len(members) - 1) + 1):
                same = bucket[step:] == bucket[:-step]
                found.append(np.stack((members[:-step][same], members[step:][same]), axis=1))
        return np.unique(np.sort(np.concatenate(found), axis=1), axis=0)

    assert np.array_equal(splits._candidate_pairs(keys), reference(keys))
