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
    crowdlab,
    find_suspects,
    multi_label_matrix,
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
    stacked = noise.with_text_features(X, ["my cat", "my dog", "my cat", "the dog"])
    assert stacked.shape == (4, 2 + 4)  # "my", "cat", "dog", "my cat" occur in two texts or more
    assert np.array_equal(noise.with_text_features(X, ["one", "two", "three", "four"]), X)  # nothing repeats
    with pytest.raises(NoiseScanError) as caught:
        noise.with_text_features(X, ["only", "three", "texts"])
    assert str(caught.value) == noise.ROWS_MISMATCH.format(n_x=4, n_y=3)


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
            noise.TOO_FEW_FOR_LABEL.format(label="spam", n=3, folds=5),
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


# --- crowdlab -------------------------------------------------------------------------------------


def crowd(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
    """Two careful annotators on every item, a careless one (random labels) on every other item."""
    X, y = blobs(per_class=30, seed=seed)
    rng = np.random.default_rng(seed)
    per_item = []
    for i, truth in enumerate(y):
        item = {"careful1": LABELS[truth], "careful2": LABELS[truth]}
        if i % 2 == 0:
            item["careless"] = LABELS[rng.integers(3)]
        per_item.append(item)
    return X, y, per_item


def test_multi_label_matrix_puts_nan_where_an_annotator_did_not_label():
    matrix, annotators = multi_label_matrix([{"b": "spam", "a": "ham"}, {"a": "promo"}], LABELS)
    assert annotators == ["a", "b"]
    assert np.array_equal(matrix, np.array([[0.0, 1.0], [2.0, np.nan]]), equal_nan=True)
    with pytest.raises(NoiseScanError, match="'eggs'"):
        multi_label_matrix([{"a": "eggs"}], LABELS)


def test_crowdlab_finds_consensus_and_ranks_the_careless_annotator_last():
    X, y, per_item = crowd()
    matrix, annotators = multi_label_matrix(per_item, LABELS)
    result = crowdlab(X, matrix, LABELS, annotators=annotators, seed=0)
    assert result["consensus_label"] == [LABELS[c] for c in y]
    assert len(result["consensus_quality"]) == len(y)
    assert result["num_annotations"][:2] == [3, 2]
    quality = result["annotator_quality"]
    assert set(quality) == {"careful1", "careful2", "careless"}
    assert quality["careless"] < min(quality["careful1"], quality["careful2"])
    assert result["annotator_agreement_with_consensus"]["careful1"] == pytest.approx(1.0)


def test_crowdlab_needs_items_with_two_annotations_and_labelled_rows():
    X = np.zeros((12, 2))
    single = np.array([[0.0, np.nan]] * 6 + [[np.nan, 1.0]] * 6)
    with pytest.raises(NoiseScanError) as caught:
        crowdlab(X, single, ["ham", "spam"])
    assert str(caught.value) == noise.NO_SHARED_ITEMS
    with pytest.raises(NoiseScanError) as caught:
        crowdlab(X, np.vstack([[[np.nan, np.nan]], np.ones((11, 2))]), ["ham", "spam"])
    assert str(caught.value) == noise.UNLABELLED_ROW.format(index=0)
    with pytest.raises(NoiseScanError, match="whole numbers from 0 to 1"):
        crowdlab(X, np.full((12, 2), 0.5), ["ham", "spam"])


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
