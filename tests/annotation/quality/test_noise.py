"""Label-noise scan on small synthetic data (seconds), and embed() on a tiny BERT built from a config."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import KNeighborsClassifier

from annotation.quality import embeddings, noise
from annotation.quality.noise import (
    NoiseScanError,
    Suspect,
    find_suspects,
    out_of_fold_probs,
)

LABELS = ["ham", "spam", "promo"]


def blobs(per_class: int = 40, dims: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three far-apart Gaussian blobs: any sensible classifier separates them perfectly."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, dims) * 12.0
    X = np.concatenate([rng.normal(c, 1.0, size=(per_class, dims)) for c in centres])
    y = np.repeat(np.arange(3), per_class)
    return X, y


def flip(y: np.ndarray, indices: list[int]) -> np.ndarray:
    noisy = y.copy()
    noisy[indices] = (noisy[indices] + 1) % 3
    return noisy


FLIPPED = [3, 17, 45, 58, 81, 110]


def test_find_suspects_flags_exactly_the_flipped_items_and_suggests_their_true_label():
    X, y = blobs()
    noisy = flip(y, FLIPPED)
    suspects = find_suspects(X, [LABELS[c] for c in noisy], LABELS, seed=1)
    assert sorted(s.row for s in suspects) == FLIPPED
    for s in suspects:
        assert s.given == LABELS[noisy[s.row]]
        assert s.suggested == LABELS[y[s.row]]
        assert 0.0 <= s.quality_score < 0.5
    scores = [s.quality_score for s in suspects]
    assert scores == sorted(scores)  # most suspect first


def test_find_suspects_on_clean_data_flags_nothing():
    X, y = blobs()
    assert find_suspects(X, [LABELS[c] for c in y], LABELS) == []


def test_find_suspects_ignores_a_project_label_nobody_used_and_is_deterministic():
    X, y = blobs()
    noisy = [LABELS[c] for c in flip(y, FLIPPED)]
    first = find_suspects(X, noisy, ["unused", *LABELS], seed=3, filter_by="both")
    assert first == find_suspects(X, noisy, ["unused", *LABELS], seed=3, filter_by="both")
    assert all(isinstance(s, Suspect) and s.suggested != "unused" for s in first)
    assert sorted(s.row for s in first) == FLIPPED


class ProbabilitiesAsFeatures(ClassifierMixin, BaseEstimator):
    """A stand-in model whose "features" are the class probabilities it should return."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.asarray(X) / np.asarray(X).sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def test_the_suggestion_is_the_most_likely_label_other_than_the_given_one():
    rng = np.random.default_rng(0)
    given = np.repeat(np.arange(3), 10)
    probs = np.full((30, 3), 0.05)
    probs[np.arange(30), given] = 0.9 + rng.uniform(0, 0.05, size=30)
    probs[3] = [0.10, 0.30, 0.60]  # labelled ham, looks like promo
    probs[4] = [0.05, 0.90, 0.05]  # labelled ham, looks like spam
    probs[15] = [0.70, 0.25, 0.05]  # labelled spam, looks like ham
    y = [LABELS[c] for c in given]
    suspects = find_suspects(
        probs, y, LABELS, n_folds=3, model=ProbabilitiesAsFeatures(), filter_by="predicted_neq_given"
    )
    assert {s.row: s.suggested for s in suspects} == {3: "promo", 4: "spam", 15: "ham"}
    # Ranked by self-confidence, the probability of the given label: 0.05 (item 4) < 0.10 (3) < 0.25 (15)
    assert [(s.row, round(s.quality_score, 2)) for s in suspects] == [(4, 0.05), (3, 0.1), (15, 0.25)]


def test_out_of_fold_probs_never_predict_an_item_with_a_model_that_saw_it():
    # A 1-nearest-neighbour model fitted on an item predicts that item's own label with probability 1.
    # Out of fold, a flipped item's nearest neighbour is one of its true class, so the probability of its
    # given (flipped) label must be 0 for every flipped item.
    X, y = blobs()
    noisy = flip(y, FLIPPED)
    probs = out_of_fold_probs(X, noisy, n_folds=5, seed=0, model=KNeighborsClassifier(n_neighbors=1))
    assert probs.shape == (120, 3)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (probs[FLIPPED, noisy[FLIPPED]] == 0.0).all()
    assert (probs[FLIPPED, y[FLIPPED]] == 1.0).all()


def test_texts_add_word_features_that_find_what_the_embeddings_miss():
    # The "embeddings" are all the same; only the words tell the classes apart.
    truth = np.repeat(np.arange(3), 40)
    words = ["refund delayed parcel", "winner claim prize", "discount coupon sale"]
    texts = [f"{words[c]} note{i % 5}" for i, c in enumerate(truth)]
    X = np.ones((120, 4))
    noisy = [LABELS[c] for c in flip(truth, FLIPPED)]
    with_words = find_suspects(X, noisy, LABELS, texts=texts)
    assert sorted(s.row for s in with_words) == FLIPPED
    assert all(s.suggested == LABELS[truth[s.row]] for s in with_words)
    assert len({s.row for s in find_suspects(X, noisy, LABELS)} & set(FLIPPED)) < len(FLIPPED)


def test_with_text_features_shapes_and_fallbacks():
    X = np.ones((4, 2))
    assert noise.with_text_features(X, None) is X
    texts = ["my cat", "my dog", "my cat", "the dog"]
    words = noise.with_text_features(X, texts, chars=False)
    assert words.shape == (4, 2 + 4)  # "my", "cat", "dog", "my cat" occur in two texts or more
    with_chars = noise.with_text_features(X, texts)
    assert with_chars.shape[1] > words.shape[1]  # " c", "ca", "cat", ... too
    assert (with_chars[:, : words.shape[1]] != words).nnz == 0  # the character block comes last
    assert np.array_equal(noise.with_text_features(X, ["one", "two", "three", "four"], chars=False), X)
    assert np.array_equal(noise.with_text_features(X, ["a", "b", "c", "d"]), X)  # no word, no character repeats
    with pytest.raises(NoiseScanError) as caught:
        noise.with_text_features(X, ["only", "three", "texts"])
    assert str(caught.value) == noise.ROWS_MISMATCH.format(n_x=4, n_y=3)


def test_the_scan_reads_character_ngrams_and_the_old_scan_keeps_the_word_features(monkeypatch):
    asked = []
    real = noise.with_text_features

    def spy(X, texts, *, chars=True):
        asked.append(chars)
        return real(X, texts, chars=chars)

    monkeypatch.setattr(noise, "with_text_features", spy)
    X, y = blobs()
    texts = [f"item {i}" for i in range(len(y))]
    given = [LABELS[c] for c in y]
    noise.scan(X, given, [{"a": g} for g in given], LABELS, texts=texts)
    find_suspects(X, given, LABELS, texts=texts)
    assert asked == [True, False]


def test_character_ngrams_relate_a_words_forms_and_read_only_a_long_texts_beginning():
    """Single words, each a stem in one of five forms: no word occurs twice, so word n-grams say nothing of one item
    about another, and the embedding here is noise. The stems' shared characters carry the label."""
    rng = np.random.default_rng(0)
    letters = np.array(list("bcdfghjklmnpqrstvwxz"))
    stems = ["".join(rng.choice(letters, size=6)) for _ in range(60)]
    forms = ["", "s", "ed", "ing", "ment"]
    texts = [stem + form for stem in stems for form in forms]
    y = np.repeat(np.arange(60) % 2, len(forms))
    X = rng.normal(size=(len(texts), 8))

    def accuracy(features):
        return float((noise.out_of_fold_probs(features, y, seed=0).argmax(axis=1) == y).mean())

    assert accuracy(noise.with_text_features(X, texts, chars=False)) < 0.65
    assert accuracy(noise.with_text_features(X, texts)) > 0.9
    # a long text's characters past CHAR_PREFIX add nothing to the character block
    tail = "x" * noise.CHAR_PREFIX
    long = noise.with_text_features(np.ones((3, 1)), [tail + " apple", tail + " pear", tail + " apple"])
    short = noise.with_text_features(np.ones((3, 1)), [tail, tail, tail])
    assert long.shape[1] == short.shape[1] + 2  # word n-grams "apple" and "xx...x apple"; no character n-gram of them


def test_out_of_fold_probs_are_reproducible_with_a_seed():
    X, y = blobs(per_class=15)
    assert np.array_equal(out_of_fold_probs(X, y, seed=7), out_of_fold_probs(X, y, seed=7))


@pytest.mark.parametrize(
    ("X", "y", "labels", "kwargs", "message"),
    [
        (
            np.zeros((6, 2)), ["ham", "spam"] * 3, LABELS, {},
            noise.TOO_FEW_ITEMS.format(minimum=10, folds=5, n=6),
        ),
        (np.zeros((12, 2)), ["ham"] * 12, LABELS, {}, noise.ONE_LABEL.format(label="ham")),
        (
            np.zeros((12, 2)), ["ham"] * 9 + ["spam"] * 3, LABELS, {},
            noise.TOO_FEW_FOR_LABEL.format(label="spam", n=3, items="items", folds=5),
        ),
        (
            np.zeros((12, 2)), ["ham"] * 6 + ["eggs"] * 6, LABELS, {},
            noise.UNKNOWN_LABEL.format(index=6, label="eggs", labels=LABELS),
        ),
        (np.zeros((11, 2)), ["ham", "spam"] * 6, LABELS, {}, noise.ROWS_MISMATCH.format(n_x=11, n_y=12)),
        (np.full((12, 2), np.nan), ["ham", "spam"] * 6, LABELS, {}, noise.NOT_FINITE),
        (np.zeros((12, 2)), ["ham", "spam"] * 6, LABELS, {"n_folds": 1}, noise.BAD_FOLDS.format(folds=1)),
        (
            np.zeros((12, 2)), ["ham", "spam"] * 6, LABELS, {"filter_by": "vibes"},
            noise.BAD_FILTER.format(methods=noise.FILTER_METHODS, filter_by="vibes"),
        ),
    ],
    ids=["too-few-items", "one-label", "rare-label", "unknown-label", "rows", "nan", "folds", "filter"],
)  # fmt: skip
def test_unscannable_data_raises_a_clear_noise_scan_error(X, y, labels, kwargs, message):
    with pytest.raises(NoiseScanError) as caught:
        find_suspects(X, y, labels, **kwargs)
    assert str(caught.value) == message


def test_out_of_fold_probs_rejects_gaps_in_the_codes():
    with pytest.raises(NoiseScanError, match="no item has code 1"):
        out_of_fold_probs(np.zeros((10, 2)), [0] * 5 + [2] * 5)


# --- the calibrated scan: every vote, CROWDLAB, as many flags as the estimate ---------------------


def overlapping(per_class: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs that overlap a little: the model is good, not perfect, so votes matter."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 3) * 4.0
    X = np.concatenate([rng.normal(c, 1.0, size=(per_class, 3)) for c in centres])
    return X, np.repeat(np.arange(3), per_class)


def crowd_votes(
    y: np.ndarray, *, planted: float, seed: int = 0, accuracy: float = 0.92
) -> tuple[list[str], list[dict[str, str]], set[int]]:
    """Two of four annotators per item, a fifth person settles disagreements; `planted` of the final labels are wrong.

    A planted error keeps its story: one annotator gave the wrong label and the reviewer sided with them.
    """
    rng = np.random.default_rng(seed)
    wrong = set(rng.choice(len(y), size=round(planted * len(y)), replace=False).tolist())
    given, votes = [], []
    for i, truth in enumerate(y.tolist()):
        a, b = (f"ann{k}" for k in rng.choice(4, size=2, replace=False))
        said = {w: truth if rng.random() < accuracy else int((truth + rng.integers(1, 3)) % 3) for w in (a, b)}
        final = said[a] if said[a] == said[b] else truth
        if said[a] != said[b] or final != truth:
            said["reviewer"] = final
        if i in wrong:
            final = (truth + 1) % 3
            said = {a: final, b: truth, "reviewer": final}
        elif final != truth:
            wrong.add(i)  # the crowd's own agreed mistake
        given.append(LABELS[final])
        votes.append({w: LABELS[c] for w, c in said.items()})
    return given, votes, wrong


def test_crowdlab_weighs_every_annotator_and_finds_the_careless_one():
    X, y = overlapping(per_class=40)
    rng = np.random.default_rng(1)
    given, votes = [], []
    for i, truth in enumerate(y.tolist()):
        other = "careful2" if i % 2 else "careless"
        said = truth if other == "careful2" else int(rng.integers(3))
        given.append(LABELS[truth])
        votes.append({"careful1": LABELS[truth], other: LABELS[said]})
    result = noise.scan(X, given, votes, LABELS, seed=0)
    assert result.method == "crowdlab" and result.num_votes == [2] * len(y)
    by_name = {a.annotator: a for a in result.annotators}
    careless, careful = by_name["careless"], by_name["careful1"]
    assert careless.n == 60 and careful.n == 120 and by_name["careful2"].n == 60
    assert careless.accuracy is not None and careless.accuracy < 0.6
    assert careless.high is not None and careful.low is not None and careless.high < careful.low
    assert careless.low is not None and careless.low <= careless.accuracy <= careless.high
    assert careless.crowdlab_quality < min(careful.crowdlab_quality, by_name["careful2"].crowdlab_quality)
    assert result.annotators[-1].annotator == "careless"  # best first
    assert result.consensus == given  # the careful annotator and the model outvote the careless one


def test_the_posterior_is_crowdlabs_own_weighted_average():
    """The scan recomputes CROWDLAB's posterior from cleanlab's weights; it must match cleanlab's consensus quality."""
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    X, y = overlapping()
    given, votes, _ = crowd_votes(y, planted=0.1)
    result = noise.scan(X, given, votes, LABELS, seed=0)
    matrix, _ = noise._vote_matrix(votes, {name: k for k, name in enumerate(result.classes)})
    crowd = noise._crowdlab_posterior(matrix, result.probs)
    expected = get_label_quality_multiannotator(pd.DataFrame(matrix), result.probs, verbose=False)["label_quality"]
    consensus = expected["consensus_label"].to_numpy()
    assert np.allclose(crowd.posterior[np.arange(len(y)), consensus], expected["consensus_quality_score"])
    assert result.consensus == [LABELS[c] for c in consensus]
    assert result.consensus_quality == pytest.approx(expected["consensus_quality_score"].tolist())


def test_more_noise_more_flags_and_clean_data_few():
    X, y = overlapping()
    counts = []
    for planted in (0.0, 0.05, 0.15):
        given, votes, wrong = crowd_votes(y, planted=planted)
        result = noise.scan(X, given, votes, LABELS, seed=0)
        assert len(result.flags) == round(result.estimated_errors)
        counts.append(len(result.flags))
        if planted == 0.0:
            assert len(result.flags) <= max(3, 2 * len(wrong)), "clean data: hardly any flags"
        else:
            assert abs(result.estimated_errors - len(wrong)) <= 0.5 * len(wrong)
    assert counts[0] < counts[1] < counts[2]


def test_the_likeliest_errors_come_first_and_the_expected_precision_is_their_mean_doubt():
    X, y = overlapping()
    given, votes, wrong = crowd_votes(y, planted=0.1)
    result = noise.scan(X, given, votes, LABELS, seed=0)
    rows = [f.row for f in result.flags]
    first = rows[: len(wrong) // 2]
    assert sum(r in wrong for r in first) >= 0.9 * len(first)
    assert [f.quality for f in result.flags] == sorted(f.quality for f in result.flags)
    assert result.expected_precision == pytest.approx(np.mean([1 - f.quality for f in result.flags]))
    for flag in result.flags:
        assert flag.given == given[flag.row] and flag.suggested != flag.given
        assert flag.quality == pytest.approx(result.label_quality[flag.row])
    assert result.posterior.shape == result.probs.shape == (len(y), 3)
    assert np.allclose(result.posterior.sum(axis=1), 1.0)


def test_one_vote_per_item_uses_cleanlabs_single_label_estimate():
    X, y = blobs()
    noisy = flip(y, FLIPPED)
    given = [LABELS[c] for c in noisy]
    result = noise.scan(X, given, [{"(import)": g} for g in given], LABELS, seed=1)
    assert result.method == "single-label" and result.annotators == [] and result.model_weight is None
    # cleanlab's noise matrix from 120 items is cautious: every flag is a planted error, most of them are flagged.
    assert set(f.row for f in result.flags) <= set(FLIPPED) and len(result.flags) >= len(FLIPPED) // 2
    assert all(f.suggested == LABELS[y[f.row]] for f in result.flags)
    clean = [LABELS[c] for c in y]
    assert noise.scan(X, clean, [{"(import)": g} for g in clean], LABELS).flags == []


def test_with_one_label_per_item_the_expected_precision_comes_from_the_denoised_posterior():
    """Every flag here is a planted error (precision 1.0); the posterior the flags are ranked by, whose model learnt
    the wrong labels too, doubts them far less (a tester's imported project read 0.45 against 0.93 measured)."""
    X, y = blobs()
    given = [LABELS[c] for c in flip(y, FLIPPED)]
    result = noise.scan(X, given, [{"(import)": g} for g in given], LABELS, seed=1)
    ranked_doubt = float(np.mean([1 - f.quality for f in result.flags]))
    assert result.expected_precision is not None and result.expected_precision > ranked_doubt + 0.1


def featureless(n: int = 30, seed: int = 0) -> np.ndarray:
    """Features that say nothing about any label (a tester's near-identical "sample text number N" items)."""
    return np.random.default_rng(seed).normal(size=(n, 4))


def test_a_model_that_learnt_nothing_counts_and_ranks_nothing():
    """Agreeing votes on items whose features carry no label: the model is no better than the label frequencies, so
    no flag rests on it (the scan had flagged 20 of a tester's 26 correct labels, "expected precision 0.95")."""
    X = featureless()
    given = [LABELS[i % 3] for i in range(len(X))]
    votes = [{"ann1": g, "ann2": g} for g in given]
    votes[4] = {"ann1": LABELS[0], "ann2": LABELS[0], "ann3": LABELS[0], "reviewer": given[4]}  # an outvoted final
    result = noise.scan(X, given, votes, LABELS, seed=0)
    assert result.skill is not None and not result.skill.informative
    assert result.skill.prior_accuracy == pytest.approx(1 / 3)  # a chance gain over the frequencies is not skill
    assert result.method == "crowdlab" and result.expected_precision is None
    assert [(f.row, f.given, f.suggested) for f in result.flags] == [(4, given[4], LABELS[0])]
    assert result.estimated_errors == 1.0 and result.consensus[4] == LABELS[0]
    assert np.allclose(result.probs, 1 / 3)  # the labels' frequencies stand in for the model
    single = noise.scan(X, given, [{"(import)": g} for g in given], LABELS, seed=0)
    assert single.method == "single-label" and single.flags == [] and single.expected_precision is None
    assert single.skill is not None and not single.skill.informative


def test_a_model_that_predicts_the_labels_is_informative_and_its_scan_unchanged():
    X, y = blobs()
    skill = noise.model_skill(y, out_of_fold_probs(X, y))
    assert skill.informative and skill.accuracy == 1.0 and skill.log_loss < 0.1 < skill.prior_log_loss
    given, votes, _ = crowd_votes(overlapping()[1], planted=0.1)
    result = noise.scan(overlapping()[0], given, votes, LABELS, seed=0)
    assert result.skill is not None and result.skill.informative and result.expected_precision is not None


def test_the_votes_own_count_sees_outvoted_finals_and_not_the_model():
    """The second opinion a small project's card states: Dawid-Skene over the votes alone, no model."""
    agreed = [{"a": LABELS[i % 3], "b": LABELS[i % 3], "c": LABELS[i % 3]} for i in range(60)]
    codes = np.array([i % 3 for i in range(60)])
    code = {name: k for k, name in enumerate(LABELS)}
    matrix, _ = noise._vote_matrix(agreed, code)
    assert noise.votes_estimate(matrix, codes, 3) < 0.5
    outvoted = [dict(v) for v in agreed]
    for i in (3, 4):  # three voters say another label than the final one
        outvoted[i] = {"a": LABELS[(i + 1) % 3], "b": LABELS[(i + 1) % 3], "c": LABELS[(i + 1) % 3], "r": LABELS[i % 3]}
    matrix, _ = noise._vote_matrix(outvoted, code)
    assert 1.5 <= noise.votes_estimate(matrix, codes, 3) <= 2.5
    X, y = overlapping(per_class=40)
    given, votes, _ = crowd_votes(y, planted=0.1)
    small = noise.scan(X, given, votes, LABELS, seed=0)
    assert small.votes_estimate is not None and small.votes_estimate < small.estimated_errors  # shown, not the count
    assert len(small.flags) == round(small.estimated_errors)
    single = noise.scan(X, given, [{"f": g} for g in given], LABELS, seed=0)
    assert single.votes_estimate is None


def test_precomputed_out_of_fold_probabilities_are_used_as_given():
    X, y = overlapping()
    given, votes, _ = crowd_votes(y, planted=0.1)
    fresh = noise.scan(X, given, votes, LABELS, seed=0)
    again = noise.scan(X, given, votes, LABELS, seed=0, probs=fresh.probs)
    assert again.flags == fresh.flags and np.allclose(again.posterior, fresh.posterior)
    with pytest.raises(NoiseScanError, match="shape"):
        noise.scan(X, given, votes, LABELS, probs=fresh.probs[:, :2])


def test_votes_must_explain_the_final_label():
    X, y = overlapping(per_class=10)
    given = [LABELS[c] for c in y]
    votes = [{"a": g} for g in given]
    with pytest.raises(NoiseScanError) as caught:
        noise.scan(X, given, [{}, *votes[1:]], LABELS)
    assert str(caught.value) == noise.NO_VOTES.format(index=0)
    with pytest.raises(NoiseScanError, match="not among its votes"):
        noise.scan(X, given, [{"a": "spam" if given[0] != "spam" else "ham"}, *votes[1:]], LABELS)
    with pytest.raises(NoiseScanError, match="'eggs'"):
        noise.scan(X, given, [{"a": given[0], "b": "eggs"}, *votes[1:]], LABELS)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(5, 10, 0.2366, 0.7634), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (80, 100, 0.7112, 0.8666)],
)
def test_wilson_interval_matches_the_textbook_values(k, n, low, high):
    assert noise.wilson(k, n) == pytest.approx((low, high), abs=1e-4)


def test_wilson_needs_a_trial():
    with pytest.raises(ValueError, match="at least one trial"):
        noise.wilson(0, 0)


# --- embeddings -----------------------------------------------------------------------------------

TINY_CORPUS = [
    "win a free prize now",
    "call me when you get home",
    "free entry to win cash",
    "are we still meeting for lunch today",
    "text win to claim your reward",
    "see you at the station later",
]


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    """A 2-layer, 16-wide BERT with a WordPiece vocabulary trained on a few sentences, saved like a hub folder."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(TINY_CORPUS, trainers.WordPieceTrainer(vocab_size=120, special_tokens=special))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=32,
    )  # fmt: skip
    fast.save_pretrained(folder)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def test_embed_returns_unit_rows_in_input_order_whatever_the_batching(tiny_encoder):
    vectors = embeddings.embed(TINY_CORPUS, tiny_encoder)
    assert vectors.shape == (6, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([embeddings.embed([t], tiny_encoder, batch_size=1)[0] for t in TINY_CORPUS])
    # Alone, a text has no padding; in a batch it is padded to the longest: mean pooling over the mask
    # must give the same vector either way.
    assert np.allclose(vectors, one_by_one, atol=1e-5)
    assert np.allclose(embeddings.embed(TINY_CORPUS, tiny_encoder, batch_size=4), vectors, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
    assert embeddings.embed([], tiny_encoder).shape == (0, 16)


def test_embed_truncates_long_texts_to_the_model_limit(tiny_encoder):
    long_text = " ".join(["free prize"] * 200)  # 400 words, far past the 32-token limit
    assert embeddings.embed([long_text], tiny_encoder).shape == (1, 16)


def test_embed_without_an_encoder_fails_with_a_scan_error(tmp_path):
    for missing in (None, tmp_path):
        with pytest.raises(NoiseScanError) as caught:
            embeddings.embed(["x"], missing)
        assert str(caught.value) == embeddings.ENCODER_MISSING


def test_encoder_dir_finds_the_wheel_folder_without_importing_it(monkeypatch):
    before = embeddings.ENCODER_PACKAGE in sys.modules
    folder = embeddings.encoder_dir()
    if folder is not None:
        assert (folder / "config.json").is_file() and folder.name == "model"
    assert (embeddings.ENCODER_PACKAGE in sys.modules) == before
    monkeypatch.setattr(embeddings.importlib.util, "find_spec", lambda name: None)
    assert embeddings.encoder_dir() is None


def imbalanced_binary(n: int = 1500, spam_share: float = 0.12, rate: float = 0.10, seed: int = 0):
    """Two separable blobs, 88 % ham: a near-perfect model, as on SMS spam, with `rate` of labels flipped."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < spam_share).astype(np.int64)
    X = np.eye(2, 5)[y] * 6.0 + rng.normal(size=(n, 5))
    flipped = rng.choice(n, size=round(rate * n), replace=False)
    noisy = y.copy()
    noisy[flipped] = 1 - noisy[flipped]
    return X, y, noisy


@pytest.mark.parametrize("seed", [0, 1])
def test_the_error_estimate_does_not_undercount_flips_on_imbalanced_binary_data(seed):
    """Most flips turn ham into spam; the model, trained on those labels, keeps them at P(ham) ~ 0.9, about ham's
    mean, so cleanlab's off-diagonal count misses a third of them (92-96 of 150). The estimate must come nearer
    (113-120: still low, see docs/benchmarks.md) and the scan flag that many, nearly all of them flips."""
    from cleanlab.count import num_label_issues

    X, y, noisy = imbalanced_binary(seed=seed)
    truth = int((noisy != y).sum())
    probs = out_of_fold_probs(X, noisy, seed=seed)
    estimate = noise.estimate_errors(noisy, probs)
    assert abs(estimate - truth) <= 0.3 * truth
    assert abs(estimate - truth) < abs(num_label_issues(noisy, probs) - truth) - 0.1 * truth
    given = [["ham", "spam"][c] for c in noisy]
    result = noise.scan(X, given, [{"import": g} for g in given], ["ham", "spam"], seed=seed, probs=probs)
    assert len(result.flags) == round(result.estimated_errors) == round(estimate)
    assert sum(noisy[f.row] != y[f.row] for f in result.flags) >= 0.95 * len(result.flags)


def test_the_error_estimate_is_small_on_clean_separable_data():
    X, y, _ = imbalanced_binary(rate=0.0)
    assert noise.estimate_errors(y, out_of_fold_probs(X, y)) <= 3


# --- calibrating the vote weight on audits of agreed items ---

GOOD, BAD = ("g1", "g2"), ("b1", "b2")


def audited_project(*, overturned_where: str, model_says: float = 0.7, seed: int = 0):
    """(vote matrix, voters, model probabilities, audits, label codes) for 600 items of 3 classes.

    Two careful annotators (g1, g2: right 95 % of the time) and two careless ones (b1, b2: 60 %) label every item
    in pairs; disagreements are settled by a third careful voter. 120 agreed items were audited: 60 agreed on by
    each pair. `overturned_where` says which 20 audits the reviewer overturned:
    - "careless pair": a third of the audits agreed on by b1 + b2, on which the model mildly backs the agreement
      (0.6), while every g1 + g2 agreement stood although the model put 0.85 on another label: who agreed is what
      tells the errors, so the votes should weigh more than by default;
    - "model doubts": a third of the audits agreed on by g1 + g2, on which the model puts `model_says` on another label,
      while the b1 + b2 audits (model flat) all stood: the model is what finds the errors, so the votes should
      weigh less.
    """
    rng = np.random.default_rng(seed)
    n, k = 600, 3
    truth = rng.integers(k, size=n)
    probs = np.full((n, k), 0.1)
    probs[np.arange(n), truth] = 0.8
    voters = ["g1", "g2", "b1", "b2", "g3"]
    accuracy = {"g1": 0.95, "g2": 0.95, "b1": 0.6, "b2": 0.6, "g3": 0.95}
    matrix = np.full((n, len(voters)), np.nan)
    for i in range(480):
        pair = [GOOD, BAD, ("g1", "b1"), ("g2", "b2")][i % 4]
        said = [truth[i] if rng.random() < accuracy[v] else (truth[i] + 1 + rng.integers(2)) % 3 for v in pair]
        for voter, label in zip(pair, said, strict=True):
            matrix[i, voters.index(voter)] = label
        if said[0] != said[1]:
            matrix[i, voters.index("g3")] = truth[i]
    audits = []
    for j, i in enumerate(range(480, 600)):
        pair = GOOD if j < 60 else BAD
        agreed = int(truth[i])
        wrong = int((truth[i] + 1) % 3)
        if overturned_where == "careless pair":
            overturn = pair == BAD and j % 3 == 0
            if pair == BAD:
                agreed = wrong if overturn else agreed  # the pair agreed on a wrong label; the reviewer set it right
                probs[i] = 0.2
                probs[i, agreed] = 0.6  # the model learnt the careless pair's habit
            else:
                probs[i] = 0.05
                probs[i, agreed] = 0.1
                probs[i, wrong] = 0.85  # the model is wrong here: both careful annotators were right
        else:
            overturn = pair == GOOD and j % 3 == 0
            if pair == BAD:
                probs[i] = 1 / 3
            elif overturn:
                agreed = wrong
                probs[i] = (1 - model_says) / 2
                probs[i, truth[i]] = model_says  # the model saw what both careful annotators missed
        for voter in pair:
            matrix[i, voters.index(voter)] = agreed
        matrix[i, voters.index("g3")] = truth[i]  # the reviewer's decision is a vote in the scan itself
        audits.append(
            noise.Audited(i, LABELS[agreed], LABELS[int(truth[i])], {voter: LABELS[agreed] for voter in pair})
        )
    code = {label: c for c, label in enumerate(LABELS)}
    return matrix, voters, probs, audits, code


def test_audits_that_overturn_a_careless_pair_raise_the_vote_weight():
    matrix, voters, probs, audits, code = audited_project(overturned_where="careless pair")
    assert sum(a.agreed != a.decided for a in audits) == 20
    calibration = noise.calibrate(matrix, voters, probs, audits, code)
    assert calibration.calibrated and (calibration.audited, calibration.overturned) == (120, 20)
    assert calibration.vote_weight > noise.VOTE_WEIGHT, calibration.scores
    assert calibration.best is not None and calibration.best > noise.VOTE_WEIGHT
    assert calibration.scores[calibration.best] > calibration.scores[min(noise.VOTE_WEIGHTS)]
    assert "Calibrated on 120 audited items, 20 overturned" in calibration.message


def test_audits_that_overturn_what_the_model_doubted_lower_the_vote_weight():
    matrix, voters, probs, audits, code = audited_project(overturned_where="model doubts")
    calibration = noise.calibrate(matrix, voters, probs, audits, code)
    assert calibration.calibrated
    assert calibration.vote_weight < noise.VOTE_WEIGHT, calibration.scores
    assert calibration.best is not None and calibration.best < noise.VOTE_WEIGHT
    assert calibration.scores[calibration.best] > calibration.scores[max(noise.VOTE_WEIGHTS)]


def test_a_thin_lead_over_the_default_moves_the_weight_only_part_of_the_way():
    # The model is so sure on the overturned items that the default already ranks 19 of the 20 first (average
    # precision 0.96): 0.2 ranks all 20 first, but beats the default in only about two thirds of the resamples.
    matrix, voters, probs, audits, code = audited_project(overturned_where="model doubts", model_says=0.9)
    calibration = noise.calibrate(matrix, voters, probs, audits, code)
    assert calibration.calibrated and calibration.best == min(noise.VOTE_WEIGHTS)
    assert calibration.scores[calibration.best] > calibration.scores[noise.VOTE_WEIGHT]
    share = calibration.beats_default
    assert share is not None and 0.5 < share < noise.CONFIDENCE
    part = (share - 0.5) / (noise.CONFIDENCE - 0.5)
    assert calibration.vote_weight == round(noise.VOTE_WEIGHT + (calibration.best - noise.VOTE_WEIGHT) * part, 2)
    assert calibration.best < calibration.vote_weight < noise.VOTE_WEIGHT
    wins = round(share * noise.RESAMPLES)
    assert (
        f"and beat the default in {wins} of 200 resamples of the audits, short of the 180 that would move the weight "
        f"all the way: it moves to {calibration.vote_weight}, {part:.0%} of the way from 0.5 toward 0.2."
    ) in calibration.message


@pytest.mark.parametrize(
    ("share", "weight", "says"),
    [
        (0.7, 0.35, "it moves to 0.35, 50% of the way from 0.5 toward 0.2."),
        (0.9, 0.2, "better in 180 of 200 resamples of the audits"),  # all the way
        (0.505, 0.5, "beat the default in only 101 of 200 resamples"),  # a move that rounds to nothing says so
        (0.895, 0.2, "better in 179 of 200 resamples of the audits"),  # rounds to the best weight: all the way
    ],
)
def test_the_weight_moves_toward_the_best_one_in_proportion_to_its_lead(monkeypatch, share, weight, says):
    matrix, voters, probs, audits, code = audited_project(overturned_where="model doubts", model_says=0.9)
    monkeypatch.setattr(noise, "_share_better", lambda *args: share)
    calibration = noise.calibrate(matrix, voters, probs, audits, code)
    assert calibration.best == 0.2 and calibration.vote_weight == weight and says in calibration.message


def test_a_lead_no_surer_than_chance_keeps_the_default(monkeypatch):
    matrix, voters, probs, audits, code = audited_project(overturned_where="model doubts", model_says=0.9)
    monkeypatch.setattr(noise, "_share_better", lambda *args: 0.5)
    calibration = noise.calibrate(matrix, voters, probs, audits, code)
    assert calibration.calibrated and calibration.vote_weight == noise.VOTE_WEIGHT
    assert calibration.best == min(noise.VOTE_WEIGHTS) and calibration.beats_default == 0.5
    assert "only 100 of 200 resamples of the audits, too few to move from it: the default vote weight 0.5 is kept" in (
        calibration.message
    )


@pytest.mark.parametrize(
    ("stood", "overturned", "says"),
    [
        (0, 0, "No audited items: the default vote weight 0.5 is used."),
        (15, 5, "there are 20 audited items with 5 overturned"),  # under MIN_AUDITED
        (56, 4, "there are 60 audited items with 4 overturned"),  # under MIN_OVERTURNED
    ],
)
def test_too_few_audits_or_overturns_keep_the_default_and_say_so(stood, overturned, says):
    matrix, voters, probs, audits, code = audited_project(overturned_where="model doubts")
    chosen = [a for a in audits if a.agreed == a.decided][:stood] + [a for a in audits if a.agreed != a.decided][
        :overturned
    ]
    calibration = noise.calibrate(matrix, voters, probs, chosen, code)
    assert not calibration.calibrated and calibration.vote_weight == noise.VOTE_WEIGHT
    assert (calibration.audited, calibration.overturned) == (stood + overturned, overturned)
    assert calibration.scores == {} and says in calibration.message
    assert f"default vote weight {noise.VOTE_WEIGHT} is used" in calibration.message


def test_the_reviewers_own_vote_never_reaches_the_calibration():
    """The audited rows are judged on their annotators' votes alone: whatever the scan's matrix holds as the
    reviewer's vote there (their decision, its opposite, or nothing), the calibration comes out the same."""
    matrix, voters, probs, audits, code = audited_project(overturned_where="model doubts")
    rows = [a.row for a in audits]
    reviewer = voters.index("g3")
    opposite, missing = matrix.copy(), matrix.copy()
    opposite[rows, reviewer] = [code[a.agreed] for a in audits]  # as if the reviewer had confirmed every one
    missing[rows, reviewer] = np.nan
    first = noise.calibrate(matrix, voters, probs, audits, code)
    assert noise.calibrate(opposite, voters, probs, audits, code) == first
    assert noise.calibrate(missing, voters, probs, audits, code) == first


def test_the_scan_ranks_with_the_calibrated_weight_and_reports_it():
    matrix, voters, probs, audits, _ = audited_project(overturned_where="model doubts")
    votes = [{voters[j]: LABELS[int(c)] for j, c in enumerate(row) if not np.isnan(c)} for row in matrix]
    given = [
        audit.decided if (audit := next((a for a in audits if a.row == i), None)) else _final(vote)
        for i, vote in enumerate(votes)
    ]
    X = np.zeros((len(given), 2))
    plain = noise.scan(X, given, votes, LABELS, probs=probs)
    tuned = noise.scan(X, given, votes, LABELS, probs=probs, audits=audits)
    assert plain.calibration is not None and not plain.calibration.calibrated
    assert tuned.calibration is not None and tuned.calibration.vote_weight < noise.VOTE_WEIGHT
    expected = noise._calibrated_posterior(
        matrix, probs, noise._crowdlab_posterior(matrix, probs).posterior, tuned.calibration.vote_weight
    )
    assert np.allclose(tuned.posterior, expected)
    assert not np.allclose(tuned.posterior, plain.posterior)


def _final(vote: dict[str, str]) -> str:
    return vote.get("g3") or next(iter(vote.values()))


def test_an_audit_naming_a_voter_who_never_voted_is_refused():
    matrix, voters, probs, audits, code = audited_project(overturned_where="model doubts")
    stranger = [audits[0]._replace(votes={"nobody": audits[0].agreed}), *audits[1:]]
    with pytest.raises(NoiseScanError, match="voter 'nobody' cast no vote"):
        noise.calibrate(matrix, voters, probs, stranger, code)


# --- how many: the ambiguity count (noise.ambiguity_doubt) weighed against the model's by the audits ---


def ambiguous_items(n: int, alpha: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items whose judgements are draws from their own distribution, Dirichlet(alpha * model) around a known model.

    Returns (model probabilities, vote matrix of two raters and a third on disagreement, final label codes as the
    third's word or the agreement, each item's true label: its distribution's largest class)."""
    rng = np.random.default_rng(seed)
    model = rng.dirichlet(np.ones(3) * 0.7, size=n)
    model = 0.9 * model + 0.1 / 3
    spread = np.array([rng.dirichlet(alpha * m) for m in model])
    first = np.array([rng.choice(3, size=3, p=p) for p in spread])
    matrix = np.full((n, 3), np.nan)
    matrix[:, :2] = first[:, :2]
    disagree = first[:, 0] != first[:, 1]
    matrix[disagree, 2] = first[disagree, 2]
    final = np.where(disagree, first[:, 2], first[:, 0])
    return model, matrix, final, spread.argmax(axis=1)


def test_the_ambiguity_count_learns_how_far_votes_stray_from_the_model_and_counts_the_items_left_wrong():
    model, matrix, final, truth = ambiguous_items(3000, alpha=4.0, seed=3)
    doubt, alpha = noise.ambiguity_doubt(matrix, model, final, seed=0)
    assert 2.0 <= alpha <= 8.0  # fitted from the votes alone: the spread they were drawn with is 4
    wrong = int((final != truth).sum())
    assert abs(doubt.sum() - wrong) <= 0.15 * wrong
    assert doubt[final != truth].mean() > 2 * doubt[final == truth].mean()  # the wrong ones are the doubted ones


def test_disagreeing_votes_mark_an_item_ambiguous_and_the_doubt_is_seeded():
    model = np.tile([0.5, 0.3, 0.2], (4, 1))
    matrix = np.array([[0, 0, np.nan], [0, 1, 0], [0, 1, 1], [1, 1, np.nan]], dtype=float)
    final = np.array([0, 0, 1, 1])
    doubt, _ = noise.ambiguity_doubt(matrix, model, final, seed=7)
    assert doubt[0] < doubt[1]  # the same final label, once agreed, once 2-1
    assert doubt[1] < doubt[2]  # a 2-1 majority for the model's favourite against one for the other class
    assert doubt[3] < doubt[2]
    again, _ = noise.ambiguity_doubt(matrix, model, final, seed=7)
    assert np.array_equal(doubt, again)
    assert ((doubt >= 0) & (doubt <= 1)).all()


def audited_ambiguous_items(reviewer: str, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], list]:
    """`ambiguous_items` (3,000, alpha 4) as votes, with 400 agreements audited by a reviewer who is one more draw of
    the item ("rater") or says its true label ("judge"). Returns (model, matrix with the reviewers' votes, voters,
    audits)."""
    model, matrix, final, truth = ambiguous_items(3000, alpha=4.0, seed=seed)
    rng = np.random.default_rng(seed + 100)
    spread_rng = np.random.default_rng(seed + 200)
    voters = ["a", "b", "c", "reviewer"]
    full = np.column_stack([matrix, np.full(len(final), np.nan)])
    agreed = np.flatnonzero(np.isnan(matrix[:, 2]))
    audits = []
    for row in rng.choice(agreed, size=400, replace=False).tolist():
        if reviewer == "judge":
            decided = int(truth[row])
        else:  # a rater: one more draw from the item's own posterior distribution given the model and its votes
            counts = np.bincount(matrix[row, :2].astype(int), minlength=3)
            decided = int(spread_rng.choice(3, p=spread_rng.dirichlet(4.0 * model[row] + counts)))
        full[row, 3] = decided
        before = {"a": LABELS[int(matrix[row, 0])], "b": LABELS[int(matrix[row, 1])]}
        audits.append(noise.Audited(row, LABELS[int(matrix[row, 0])], LABELS[decided], before))
    return model, full, voters, audits


@pytest.mark.parametrize("reviewer", ["rater", "judge"])
def test_audits_weigh_the_ambiguity_count_by_how_reviewers_overturn_agreements(reviewer):
    """A reviewer who is one more annotator overturns agreements the way an ambiguous item's next judgement would;
    one who knows the true label overturns only the wrong ones. The weight says which the audits look like."""
    code = {name: k for k, name in enumerate(LABELS)}
    weights = []
    for seed in (0, 1):
        model, matrix, voters, audits = audited_ambiguous_items(reviewer, seed)
        reading = noise.weigh_ambiguity(matrix, voters, model, audits, code, seed=0)
        assert reading.verdict == "weighed"
        assert reading.as_rater > reading.as_judge + noise.SEPARATION_Z * reading.sd
        weights.append(reading.weight)
    if reviewer == "rater":
        assert min(weights) >= 0.6
    else:
        assert max(weights) <= 0.4


def test_too_few_audits_leave_the_count_to_the_model():
    code = {name: k for k, name in enumerate(LABELS)}
    model, matrix, voters, audits = audited_ambiguous_items("rater", 0)
    few = audits[: noise.MIN_AUDITED - 1]
    assert noise.weigh_ambiguity(matrix, voters, model, few, code) == (None, None, None, "too few", None)


def test_the_scan_counts_with_the_model_until_audits_weigh_in(monkeypatch):
    X, y = overlapping()
    given, votes, _ = crowd_votes(y, planted=0.1)
    shipped = noise.scan(X, given, votes, LABELS, seed=0)
    assert noise.COUNT == "audits"
    code = {name: k for k, name in enumerate(shipped.classes)}
    given_codes = np.array([code[g] for g in given])
    model_count = noise.estimate_errors(given_codes, shipped.probs)
    assert shipped.estimated_errors == pytest.approx(model_count)  # no audits: the model's count
    assert shipped.ambiguity is not None and shipped.ambiguity.weight == 0.0
    assert "there are 0" in shipped.ambiguity.message and shipped.ambiguity.ambiguity_count is None  # not drawn
    matrix, _ = noise._vote_matrix(votes, code)
    doubt, _ = noise.ambiguity_doubt(matrix, shipped.probs, given_codes, seed=0)
    monkeypatch.setattr(noise, "COUNT", "ambiguity")
    switched = noise.scan(X, given, votes, LABELS, seed=0, probs=shipped.probs)
    assert switched.estimated_errors == pytest.approx(doubt.sum())
    assert len(switched.flags) == round(doubt.sum())
    # the ranking is the shipped one: the count changes how many are flagged, not which come first
    rows = [f.row for f in shipped.flags]
    assert [f.row for f in switched.flags][: len(rows)] == rows[: len(switched.flags)]
    flagged = [f.row for f in switched.flags]
    assert switched.expected_precision == pytest.approx(float(np.mean(doubt[flagged])))
    monkeypatch.setattr(noise, "COUNT", "model")
    assert noise.scan(X, given, votes, LABELS, seed=0, probs=shipped.probs).ambiguity is None


def test_a_weighed_count_blends_both_counts_and_the_stated_precision_alike():
    model, matrix, voters, audits = audited_ambiguous_items("rater", 0)
    votes = [{voters[j]: LABELS[int(v)] for j, v in enumerate(row) if not np.isnan(v)} for row in matrix]
    audited = {a.row: a for a in audits}
    given = []
    for i, item in enumerate(votes):
        if i in audited:
            given.append(audited[i].decided)
        elif len(item) == 3:
            given.append(item["c"])
        else:
            given.append(item["a"])
    X = np.zeros((len(given), 2))
    result = noise.scan(X, given, votes, LABELS, seed=0, probs=model, audits=audits)
    a = result.ambiguity
    assert a is not None and 0.0 < a.weight <= 1.0 and a.audited == 400
    assert result.estimated_errors == pytest.approx(a.weight * a.ambiguity_count + (1 - a.weight) * a.model_count)
    assert len(result.flags) == round(result.estimated_errors)
    assert "Reviewers overturned" in a.message and f"{a.overturned} of 400" in a.message
    code = {name: k for k, name in enumerate(result.classes)}
    doubt, _ = noise.ambiguity_doubt(noise._vote_matrix(votes, code)[0], model, np.array([code[g] for g in given]))
    flagged = [f.row for f in result.flags]
    blended = a.weight * doubt[flagged] + (1 - a.weight) * (1 - np.asarray(result.label_quality)[flagged])
    assert result.expected_precision == pytest.approx(float(blended.mean()))


def agreed_wrong(flips: int) -> tuple[noise.AuditReading, int]:
    """`audited_ambiguous_items("judge", 0)` with the first `flips` audited agreements made wrong: both annotators
    had said a label the reviewer (who knows the answer) overturned. (the reading, the overturns)"""
    code = {name: k for k, name in enumerate(LABELS)}
    model, matrix, voters, audits = audited_ambiguous_items("judge", 0)
    flipped = []
    for audit in audits[:flips]:
        wrong = LABELS[(code[audit.decided] + 1) % 3]
        matrix[audit.row, :2] = code[wrong]
        flipped.append(audit._replace(agreed=wrong, votes={"a": wrong, "b": wrong}))
    audits = flipped + audits[flips:]
    return noise.weigh_ambiguity(matrix, voters, model, audits, code), sum(a.agreed != a.decided for a in audits)


def test_more_overturns_than_a_rater_would_make_taper_the_ambiguity_count_away():
    """Annotators who agree on wrong labels: a reviewer who knows the answer overturns more agreements than even one
    more annotator would, and the ambiguity reading, which trusts agreements, would count far too few. Past a rater's
    expectation the weight tapers to 0 (two standard deviations above it) rather than jumping from 1 to 0."""
    some, overturned = agreed_wrong(60)  # 15 % of the audits: still under a rater's expectation, read as one
    assert some.verdict == "weighed" and overturned < some.as_rater and 0.6 <= some.weight < 1.0
    more, overturned = agreed_wrong(90)  # 22.5 %: past a rater's expectation, the weight tapers
    assert more.verdict == "weighed" and overturned > more.as_rater and 0.0 < more.weight < some.weight
    most, overturned = agreed_wrong(120)  # 30 %: past the excess
    assert most.verdict == "agreed wrong" and most.weight == 0.0 and overturned > most.as_rater


def test_audits_that_cannot_tell_a_rater_from_a_judge_leave_the_count_to_the_model():
    """A model so sure, and votes so unanimous, that neither a rater nor a judge would overturn anything."""
    n = 200
    codes = np.arange(n) % 2
    model = np.full((n, 2), 0.001)
    model[np.arange(n), codes] = 0.999
    matrix = np.column_stack([codes, codes, np.full(n, np.nan)]).astype(float)
    names = ["ham", "spam"]
    audits = [noise.Audited(i, names[codes[i]], names[codes[i]], {"a": names[codes[i]], "b": names[codes[i]]})
              for i in range(40)]
    matrix[:40, 2] = codes[:40]
    reading = noise.weigh_ambiguity(matrix, ["a", "b", "r"], model, audits, {"ham": 0, "spam": 1})
    assert reading.verdict == "untold" and reading.weight is None
    assert abs(reading.as_rater - reading.as_judge) < noise.SEPARATION_Z * reading.sd


def test_the_ambiguity_count_works_with_two_classes_and_many():
    rng = np.random.default_rng(0)
    for n_classes in (2, 12):
        model = rng.dirichlet(np.ones(n_classes), size=500)
        matrix = np.column_stack([model.argmax(axis=1), rng.integers(n_classes, size=500)]).astype(float)
        doubt, alpha = noise.ambiguity_doubt(matrix, model, model.argmax(axis=1), seed=1)
        assert doubt.shape == (500,) and ((doubt >= 0) & (doubt <= 1)).all()
        assert noise.ALPHA_BOUNDS[0] <= alpha <= noise.ALPHA_BOUNDS[1]


def test_thirty_audits_of_these_items_are_too_few_to_tell_a_rater_from_a_judge_forty_are_enough():
    """The two readings' expected overturns must lie two standard deviations of chance apart: 30 audits here expect
    about 10 against 6 (2.5 apart), so whatever was overturned the count stays the model's."""
    code = {name: k for k, name in enumerate(LABELS)}
    for reviewer in ("rater", "judge"):
        model, matrix, voters, audits = audited_ambiguous_items(reviewer, 0)
        few = noise.weigh_ambiguity(matrix, voters, model, audits[:30], code)
        assert few.verdict == "untold" and few.weight is None
        assert abs(few.as_rater - few.as_judge) < noise.SEPARATION_Z * few.sd
        enough = noise.weigh_ambiguity(matrix, voters, model, audits[:40], code)
        assert enough.verdict == "weighed" and (enough.weight > 0.5 if reviewer == "rater" else enough.weight < 0.2)


def test_a_second_model_is_asked_on_the_same_folds_and_averaged_with_the_first():
    X, y = blobs()
    given = [LABELS[c] for c in flip(y, FLIPPED)]
    votes = [{"final": label} for label in given]
    first = noise.out_of_fold_probs(noise.with_text_features(X, None), flip(y, FLIPPED), seed=4)
    asked: list[tuple[int, int]] = []
    unsure = np.full((len(given), 3), 1 / 3)

    def second(codes, n_folds, seed):
        asked.append((n_folds, seed))
        assert list(codes) == list(flip(y, FLIPPED))  # codes over the labels in use, in the project's order
        return unsure

    alone = noise.scan(X, given, votes, LABELS, seed=4)
    both = noise.scan(X, given, votes, LABELS, seed=4, second_model=second)
    assert asked == [(noise.DEFAULT_FOLDS, 4)]
    with_probs = noise.scan(X, given, votes, LABELS, seed=4, probs=(first + unsure) / 2)
    assert both.label_quality == pytest.approx(with_probs.label_quality)
    assert both.label_quality != pytest.approx(alone.label_quality)  # a know-nothing second model dilutes the first
    noise.scan(X, given, votes, LABELS, seed=7, n_folds=4, second_model=second)
    assert asked[-1] == (4, 7)
    with pytest.raises(noise.NoiseScanError, match="probabilities"):
        noise.scan(X, given, votes, LABELS, seed=4, second_model=lambda codes, n, s: unsure[:, :2])
