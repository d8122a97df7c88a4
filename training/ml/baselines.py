"""The baselines a fine-tuned classifier is shown against, fitted on train and chosen on validation only.

- majority: always the most frequent training label;
- tfidf_logreg: TF-IDF (word 1-2-grams or char 2-5-grams) + logistic regression, features, C and class weights
  picked by validation macro-F1;
- logreg_embeddings: logistic regression on frozen base-model sentence embeddings, C and class weights picked the
  same way;
- zero_shot: each label's name and guideline description embedded with the base model; the nearest label by
  cosine similarity wins (nothing learnt from labelled items);
- k_shot: the nearest centroid of K_SHOT random train examples per label, in the same embedding space.

`fit_classification_baselines` only ever receives the train and validation splits: what it returns predicts
texts it has never seen, which is how the test split is scored without taking part in any choice. No Django.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import product
from typing import Any, Protocol

import numpy as np
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
CLASS_WEIGHT_GRID: tuple[str | None, ...] = (None, "balanced")
# Each is fitted on train only; the vocabulary and IDF never see validation or test text.
TFIDF_FEATURES: dict[str, dict[str, Any]] = {
    "word 1-2-grams": {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True},
    "char 2-5-grams": {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True},
}
DEFAULT_C = 1.0
MAX_ITER = 2000
K_SHOT = 8
# Cosine similarities become probabilities by a softmax at this temperature (for loss and calibration only;
# the prediction is the nearest label whatever it is).
SIMILARITY_TEMPERATURE = 0.05
NO_VALIDATION = "no validation split with two labels: defaults, nothing tuned"

Embed = Callable[[Sequence[str]], np.ndarray]


class Texts:
    """A split's texts, with their frozen embeddings computed on first use and kept."""

    def __init__(self, texts: Sequence[str], embed: Embed) -> None:
        self.texts = list(texts)
        self._embed = embed

    def __len__(self) -> int:
        return len(self.texts)

    @cached_property
    def embeddings(self) -> np.ndarray:
        return self._embed(self.texts)


class Predictor(Protocol):
    def __call__(self, inputs: Texts) -> np.ndarray: ...


@dataclass(frozen=True)
class Fitted:
    """One fitted baseline: what it is, what validation chose, and its class probabilities for unseen texts."""

    name: str
    method: str
    predict: Predictor
    chosen: dict[str, Any] = field(default_factory=dict)
    validation_macro_f1: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # The train rows it learnt from when it sees only a few (k-shot): pre-labelling records them as provenance.
    examples: tuple[int, ...] = ()


def label_descriptions(guidelines: str, labels: Sequence[str]) -> dict[str, str]:
    """What the guidelines say about each label: a bullet or definition line that starts with the label's name
    ("- **spam**: unsolicited marketing ...", with its indented continuation lines), or the paragraph under a
    heading that is the label's name. Labels the guidelines do not describe are left out."""
    lines = guidelines.splitlines()
    found: dict[str, str] = {}
    for label in labels:
        name = re.escape(label)
        bullet = re.compile(rf"^\s*(?:[-*+]|\d+[.)])?\s*[*_`]*{name}[*_`]*\s*[:\u2013\u2014-]\s*(?P<text>.+)$", re.I)
        heading = re.compile(rf"^\s*#+\s*[*_`]*{name}[*_`]*\s*$", re.I)
        for index, line in enumerate(lines):
            if match := bullet.match(line):
                parts = [match.group("text")]
                for follow in lines[index + 1 :]:
                    if not follow.strip() or not follow.startswith((" ", "\t")) or bullet_start(follow):
                        break
                    parts.append(follow.strip())
                found[label] = plain(" ".join(parts))
                break
            if heading.match(line):
                parts = []
                for follow in lines[index + 1 :]:
                    if follow.lstrip().startswith("#") or (parts and not follow.strip()):
                        break
                    if follow.strip():
                        parts.append(follow.strip())
                if parts:
                    found[label] = plain(" ".join(parts))
                    break
    return found


def bullet_start(line: str) -> bool:
    return bool(re.match(r"^\s*(?:[-*+]|\d+[.)])\s", line))


def plain(markdown: str) -> str:
    """Markdown emphasis and code marks removed, whitespace collapsed."""
    return " ".join(re.sub(r"[*_`]+", "", markdown).split())


def label_text(label: str, description: str | None) -> str:
    return f"{label}: {description}" if description else label


def macro_f1(y_true: np.ndarray, probabilities: np.ndarray, label_count: int) -> float:
    return float(
        f1_score(y_true, probabilities.argmax(axis=1), labels=range(label_count), average="macro", zero_division=0)
    )


def fit_classification_baselines(
    train: Texts,
    train_y: Sequence[int] | np.ndarray,
    validation: Texts,
    validation_y: Sequence[int] | np.ndarray,
    *,
    labels: Sequence[str],
    descriptions: Mapping[str, str],
    embed: Embed,
    seed: int,
) -> list[Fitted]:
    """Every classification baseline, fitted on train and tuned on validation; none of them sees the test split."""
    train_labels = np.asarray(train_y, dtype=int)
    validation_labels = np.asarray(validation_y, dtype=int)
    count = len(labels)
    return [
        fit_majority(train_labels, labels),
        fit_tfidf_logreg(train, train_labels, validation, validation_labels, label_count=count, seed=seed),
        fit_embedding_logreg(train, train_labels, validation, validation_labels, label_count=count, seed=seed),
        fit_zero_shot(labels, descriptions, embed),
        fit_k_shot(train, train_labels, label_count=count, seed=seed),
    ]


def fit_majority(train_y: np.ndarray, labels: Sequence[str]) -> Fitted:
    counts = np.bincount(train_y, minlength=len(labels)).astype(float)
    prior = counts / max(counts.sum(), 1.0)

    def predict(inputs: Texts) -> np.ndarray:
        return np.tile(prior, (len(inputs), 1))

    return Fitted(
        name="majority",
        method="Always the most frequent training label (training label frequencies as probabilities).",
        predict=predict,
        chosen={"label": labels[int(counts.argmax())]},
    )


def _logreg(c: float, class_weight: str | None, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight=class_weight, max_iter=MAX_ITER, random_state=seed)


def _probabilities(model: LogisticRegression, x: Any, label_count: int) -> np.ndarray:
    """Probabilities over every label: a label absent from train gets 0."""
    out = np.zeros((x.shape[0], label_count))
    out[:, model.classes_] = model.predict_proba(x)
    return out


def _tunable(train_y: np.ndarray, validation_y: np.ndarray) -> bool:
    return len(np.unique(train_y)) >= 2 and len(np.unique(validation_y)) >= 2


Setting = tuple[Any, ...]


def _select(
    grid: Sequence[Setting],
    default: Setting,
    fit: Callable[[Setting], LogisticRegression],
    score: Callable[[Setting, LogisticRegression], float],
    *,
    tune: bool,
) -> tuple[Setting, LogisticRegression, float | None]:
    """The setting with the best validation score (the first of equals, so ties go to the simpler setting).

    Without a usable validation split the default is fitted and nothing is tuned.
    """
    if not tune:
        return default, fit(default), None
    best: tuple[Setting, LogisticRegression, float] | None = None
    for setting in grid:
        model = fit(setting)
        value = score(setting, model)
        if best is None or value > best[2]:
            best = (setting, model, value)
    assert best is not None  # the grid is never empty
    return best


def fit_tfidf_logreg(
    train: Texts,
    train_y: np.ndarray,
    validation: Texts,
    validation_y: np.ndarray,
    *,
    label_count: int,
    seed: int,
) -> Fitted:
    """TF-IDF + logistic regression, with features, C and class weights chosen by validation macro-F1."""
    method = "TF-IDF + logistic regression, fitted on train; features, C and class weights chosen on validation."
    if len(np.unique(train_y)) < 2:
        return _constant("tfidf_logreg", method, train_y, label_count)
    tune = _tunable(train_y, validation_y)
    vectorizers = {name: TfidfVectorizer(**options).fit(train.texts) for name, options in TFIDF_FEATURES.items()}
    train_x = {name: vectorizer.transform(train.texts) for name, vectorizer in vectorizers.items()}
    validation_x = (
        {name: vectorizer.transform(validation.texts) for name, vectorizer in vectorizers.items()} if tune else {}
    )
    (features, c, weight), model, score = _select(
        list(product(TFIDF_FEATURES, C_GRID, CLASS_WEIGHT_GRID)),
        (next(iter(TFIDF_FEATURES)), DEFAULT_C, None),
        lambda s: _logreg(s[1], s[2], seed).fit(train_x[s[0]], train_y),
        lambda s, m: macro_f1(validation_y, _probabilities(m, validation_x[s[0]], label_count), label_count),
        tune=tune,
    )
    vectorizer = vectorizers[features]

    def predict(inputs: Texts) -> np.ndarray:
        return _probabilities(model, vectorizer.transform(inputs.texts), label_count)

    return Fitted(
        name="tfidf_logreg",
        method=method if tune else f"{method} ({NO_VALIDATION})",
        predict=predict,
        chosen={"features": features, "C": c, "class_weight": weight or "none"},
        validation_macro_f1=score,
    )


def fit_embedding_logreg(
    train: Texts,
    train_y: np.ndarray,
    validation: Texts,
    validation_y: np.ndarray,
    *,
    label_count: int,
    seed: int,
) -> Fitted:
    """Logistic regression on frozen base-model embeddings, with C and class weights chosen by validation macro-F1."""
    method = (
        "Logistic regression on frozen base-model sentence embeddings (mean-pooled, L2-normalised), fitted on "
        "train; C and class weights chosen on validation."
    )
    if len(np.unique(train_y)) < 2:
        return _constant("logreg_embeddings", method, train_y, label_count)
    tune = _tunable(train_y, validation_y)
    (c, weight), model, score = _select(
        list(product(C_GRID, CLASS_WEIGHT_GRID)),
        (DEFAULT_C, None),
        lambda s: _logreg(s[0], s[1], seed).fit(train.embeddings, train_y),
        lambda s, m: macro_f1(validation_y, _probabilities(m, validation.embeddings, label_count), label_count),
        tune=tune,
    )

    def predict(inputs: Texts) -> np.ndarray:
        return _probabilities(model, inputs.embeddings, label_count)

    return Fitted(
        name="logreg_embeddings",
        method=method if tune else f"{method} ({NO_VALIDATION})",
        predict=predict,
        chosen={"C": c, "class_weight": weight or "none"},
        validation_macro_f1=score,
    )


def _constant(name: str, method: str, train_y: np.ndarray, label_count: int) -> Fitted:
    """A train split with one label leaves nothing to fit: the baseline predicts that label."""
    prior = np.bincount(train_y, minlength=label_count).astype(float)
    prior /= max(prior.sum(), 1.0)

    def predict(inputs: Texts) -> np.ndarray:
        return np.tile(prior, (len(inputs), 1))

    return Fitted(name=name, method=f"{method} (one label in train: predicts it)", predict=predict)


def _nearest(vectors: np.ndarray, present: np.ndarray) -> Predictor:
    """Probabilities from cosine similarity to one unit vector per label; labels not `present` are never chosen."""

    def predict(inputs: Texts) -> np.ndarray:
        similarity = inputs.embeddings @ vectors.T / SIMILARITY_TEMPERATURE
        similarity[:, ~present] = -np.inf
        return softmax(similarity, axis=1)

    return predict


def fit_zero_shot(labels: Sequence[str], descriptions: Mapping[str, str], embed: Embed) -> Fitted:
    """Nearest label description: needs no labelled item, only the label names and the guidelines."""
    texts = [label_text(label, descriptions.get(label)) for label in labels]
    vectors = embed(texts)
    described = sum(1 for label in labels if descriptions.get(label))
    source = f"guideline descriptions for {described} of {len(labels)} labels" if described else "label names only"
    return Fitted(
        name="zero_shot",
        method=(
            "Zero-shot: each label's name and guideline description embedded with the base model; the nearest "
            f"label by cosine similarity ({source})."
        ),
        predict=_nearest(vectors, np.ones(len(labels), dtype=bool)),
        details={"label_texts": dict(zip(labels, texts, strict=True))},
    )


def fit_k_shot(train: Texts, train_y: np.ndarray, *, label_count: int, seed: int, k: int = K_SHOT) -> Fitted:
    """Nearest centroid of k random train examples per label (fewer where a label has fewer) in embedding space."""
    rng = np.random.default_rng(seed)
    picked = {
        label: rng.choice(np.flatnonzero(train_y == label), size=min(k, int((train_y == label).sum())), replace=False)
        for label in range(label_count)
    }
    embeddings = train.embeddings
    width = embeddings.shape[1] if embeddings.ndim == 2 else 0
    centroids = np.zeros((label_count, width))
    present = np.zeros(label_count, dtype=bool)
    for label, rows in picked.items():
        if len(rows):
            mean = embeddings[rows].mean(axis=0)
            centroids[label] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            present[label] = True
    return Fitted(
        name="k_shot",
        method=(
            f"{k}-shot: the nearest centroid of {k} random train examples per label, by cosine similarity of "
            "frozen base-model embeddings (k fixed, not tuned)."
        ),
        predict=_nearest(centroids, present),
        chosen={"k": k},
        examples=tuple(sorted(int(row) for rows in picked.values() for row in rows)),
    )
