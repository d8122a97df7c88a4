"""Baselines: fitted on train, tuned on validation, blind to the test split; the guideline descriptions they read."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from tests.fixtures.tiny_models import classification_spec, sentiment_rows
from training.ml import evaluation
from training.ml.baselines import (
    C_GRID,
    CLASS_WEIGHT_GRID,
    K_SHOT,
    NO_VALIDATION,
    TFIDF_FEATURES,
    Texts,
    fit_classification_baselines,
    label_descriptions,
    macro_f1,
)
from training.ml.metrics import VERDICT_NOT_BETTER, VERDICT_TOO_SMALL
from training.ml.recipe import Recipe

LABELS = ["pos", "neg"]
NAMES = ["majority", "tfidf_logreg", "logreg_embeddings", "zero_shot", "k_shot"]
GUIDELINES = """# SMS spam: guidelines

Decide whether the **sender** is trying to sell, phish or lure the reader.

- **spam**: unsolicited marketing, prize/lottery claims, premium-rate numbers,
  links to claim something.
- **ham**: anything a person would send to someone they know.

## Unsure
When in doubt, mark the item *unsure*.
"""


def bag_of_words(texts):
    """A stand-in for the base model: hashed word counts, L2-normalised (deterministic across processes)."""
    out = np.zeros((len(texts), 64))
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, sum(map(ord, word)) % 64] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def split(rows):
    return Texts([r["text"] for r in rows], bag_of_words), np.array([LABELS.index(r["label"]) for r in rows])


def fit(train_rows, validation_rows, **kwargs):
    train, train_y = split(train_rows)
    validation, validation_y = split(validation_rows)
    return {
        f.name: f
        for f in fit_classification_baselines(
            train,
            train_y,
            validation,
            validation_y,
            labels=LABELS,
            descriptions=kwargs.pop("descriptions", {}),
            embed=bag_of_words,
            seed=0,
        )
    }


def test_label_descriptions_come_from_the_guideline_bullets_and_headings():
    found = label_descriptions(GUIDELINES, ["spam", "ham", "unsure", "other"])
    assert found == {
        "spam": "unsolicited marketing, prize/lottery claims, premium-rate numbers, links to claim something.",
        "ham": "anything a person would send to someone they know.",
        "unsure": "When in doubt, mark the item unsure.",
    }
    assert label_descriptions("", ["spam"]) == {}


def test_every_baseline_is_fitted_and_predicts_unseen_texts():
    fitted = fit(sentiment_rows(60, seed=1), sentiment_rows(30, seed=2), descriptions={"pos": "good, great, lovely"})
    assert list(fitted) == NAMES
    test, test_y = split(sentiment_rows(40, seed=3))
    for name, baseline in fitted.items():
        probabilities = baseline.predict(test)
        assert probabilities.shape == (40, 2), name
        assert np.allclose(probabilities.sum(axis=1), 1.0), name
        assert baseline.method, name
    assert fitted["majority"].chosen == {"label": "pos"}
    assert fitted["k_shot"].chosen == {"k": K_SHOT}
    assert fitted["zero_shot"].details["label_texts"] == {"pos": "pos: good, great, lovely", "neg": "neg"}
    assert macro_f1(test_y, fitted["tfidf_logreg"].predict(test), 2) >= 0.9


def test_tuning_picks_the_setting_best_on_validation():
    train_rows, validation_rows = sentiment_rows(60, seed=1), sentiment_rows(30, seed=2)
    fitted = fit(train_rows, validation_rows)
    train, train_y = split(train_rows)
    validation, validation_y = split(validation_rows)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    scores = {}
    for features, c, weight in product(TFIDF_FEATURES, C_GRID, CLASS_WEIGHT_GRID):
        vectorizer = TfidfVectorizer(**TFIDF_FEATURES[features]).fit(train.texts)
        model = LogisticRegression(C=c, class_weight=weight, max_iter=2000, random_state=0)
        model.fit(vectorizer.transform(train.texts), train_y)
        predicted = model.predict_proba(vectorizer.transform(validation.texts))
        scores[features, c, weight] = macro_f1(validation_y, predicted, 2)
    best = max(scores.values())
    chosen = fitted["tfidf_logreg"].chosen
    weight = None if chosen["class_weight"] == "none" else chosen["class_weight"]
    assert scores[chosen["features"], chosen["C"], weight] == best == fitted["tfidf_logreg"].validation_macro_f1
    # The first of the best settings in grid order: ties go to the simpler, more regularised one.
    assert (chosen["features"], chosen["C"], weight) == next(key for key, value in scores.items() if value == best)

    # Validation decides: with its labels flipped, the best setting on it is a different one.
    flipped = [{**r, "label": "neg" if r["label"] == "pos" else "pos"} for r in validation_rows]
    refitted = fit(train_rows, flipped)
    assert refitted["tfidf_logreg"].validation_macro_f1 < fitted["tfidf_logreg"].validation_macro_f1
    assert refitted["logreg_embeddings"].validation_macro_f1 < fitted["logreg_embeddings"].validation_macro_f1


def test_without_validation_the_defaults_are_fitted_and_said_so():
    fitted = fit(sentiment_rows(60, seed=1), [])
    for name in ("tfidf_logreg", "logreg_embeddings"):
        assert fitted[name].chosen["C"] == 1.0 and fitted[name].chosen["class_weight"] == "none"
        assert fitted[name].validation_macro_f1 is None and NO_VALIDATION in fitted[name].method


def test_a_train_split_with_one_label_predicts_it():
    rows = [r for r in sentiment_rows(60, seed=1) if r["label"] == "neg"]
    fitted = fit(rows, sentiment_rows(30, seed=2))
    test, _ = split(sentiment_rows(10, seed=3))
    for name in ("majority", "tfidf_logreg", "logreg_embeddings", "k_shot"):
        assert (fitted[name].predict(test).argmax(axis=1) == 1).all(), name


@pytest.fixture
def untrained_recipe(registry, tmp_path) -> Recipe:
    """A set-up recipe on the tiny BERT: its head is random, so it is no better than its baselines."""
    recipe = Recipe(
        classification_spec(),
        train=sentiment_rows(64, seed=1),
        validation=sentiment_rows(32, seed=2),
        checkpoint_dir=tmp_path / "ck",
        registry=registry,
    )
    recipe.setup()
    return recipe


def poisoned(rows):
    """The same number of test rows with other texts and every label flipped."""
    return [{"text": f"zzz {r['text'][::-1]}", "label": "neg" if r["label"] == "pos" else "pos"} for r in rows]


def test_baselines_never_see_the_test_split(untrained_recipe, monkeypatch):
    seen = []
    real = evaluation.fit_classification_baselines

    def spy(train, train_y, validation, validation_y, **kwargs):
        seen.append(train.texts + validation.texts + list(kwargs["descriptions"].values()))
        return real(train, train_y, validation, validation_y, **kwargs)

    monkeypatch.setattr(evaluation, "fit_classification_baselines", spy)
    test = sentiment_rows(40, seed=3)
    clean = untrained_recipe.evaluate(test, baselines=True)
    dirty = untrained_recipe.evaluate(poisoned(test), baselines=True)

    # The fitting saw the same train and validation texts whatever the test split held, and none of its texts.
    assert seen[0] == seen[1]
    assert not set(seen[1]) & {r["text"] for r in poisoned(test)}
    for name in NAMES:
        for key in ("chosen", "method", "validation_macro_f1"):
            assert clean["baselines"][name].get(key) == dirty["baselines"][name].get(key), (name, key)
    assert list(clean["baselines"]) == NAMES


def test_test_report_has_intervals_baselines_and_a_plain_comparison(untrained_recipe):
    metrics = untrained_recipe.evaluate(sentiment_rows(20, seed=3), baselines=True)
    for figures in [metrics, *metrics["baselines"].values()]:
        for name in ("accuracy", "macro_f1"):
            low, high = figures["intervals"][name]
            assert low <= figures[name] <= high
    comparison = metrics["comparison"]
    assert comparison["metric"] == "macro_f1" and comparison["best_baseline"] in NAMES
    best = metrics["baselines"][comparison["best_baseline"]]["macro_f1"]
    assert best == max(b["macro_f1"] for b in metrics["baselines"].values())
    assert comparison["difference"] == pytest.approx(metrics["macro_f1"] - best)
    # 20 test items are too few to tell, unless the untrained model is no better than the majority class.
    assert comparison["verdict"] in (VERDICT_TOO_SMALL, VERDICT_NOT_BETTER)
    assert comparison["verdict"] != VERDICT_TOO_SMALL or "too small" in comparison["message"]
    assert "intervals" in untrained_recipe.evaluate(sentiment_rows(20, seed=3))
