"""The span recipe on a tiny BERT: labels aligned through the offset mapping (first sub-token only), LoRA
trains, seqeval's entity-level figures beside the gazetteer baseline, predictions back as valid spans, and a
saved adapter that predicts the same after loading."""

from __future__ import annotations

import random

import pytest

from annotation.tasktypes import Spans
from training.ml.spans import Gazetteer, SpanRecipe, SpanTrainingConfig, entity_scores

PEOPLE = ["alice", "bob", "carol", "dave"]
PLACES = ["paris", "rome", "oslo", "lima"]
FILLER = ["the", "good", "bad", "movie", "was", "very", "and", "really"]


def rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        who, where = rng.choice(PEOPLE), rng.choice(PLACES)
        words = [rng.choice(FILLER), who, "in", where, rng.choice(FILLER)]
        text = " ".join(words)
        start_who = len(words[0]) + 1
        start_where = text.index(" in ") + 4
        spans = [
            {"start": start_who, "end": start_who + len(who), "label": "PER"},
            {"start": start_where, "end": start_where + len(where), "label": "LOC"},
        ]
        out.append({"text": text, "spans": spans})
    return out


def test_entity_scores_and_the_gazetteer_on_constructed_cases():
    both = [{"start": 0, "end": 5, "label": "PER"}, {"start": 9, "end": 14, "label": "LOC"}]
    gold = [{"text": "alice in paris", "spans": both}]
    exact = entity_scores(gold, [gold[0]["spans"]])
    assert exact["f1"] == 1.0 and exact["entities"] == 2
    half = entity_scores(gold, [[{"start": 0, "end": 5, "label": "PER"}, {"start": 9, "end": 14, "label": "PER"}]])
    assert half["precision"] == 0.5 and half["recall"] == 0.5 and half["per_label"]["LOC"]["recall"] == 0.0
    gazetteer = Gazetteer.from_rows([*gold, {"text": "new york", "spans": [{"start": 0, "end": 8, "label": "LOC"}]}])
    assert gazetteer.spans("bob went from new york to paris") == [
        {"start": 14, "end": 22, "label": "LOC"},
        {"start": 26, "end": 31, "label": "LOC"},
    ]


@pytest.mark.slow
def test_lora_token_classification_learns_and_round_trips(tiny_bert, tmp_path):
    train, test = rows(64, seed=1), rows(16, seed=2)
    config = SpanTrainingConfig(base_model_dir=str(tiny_bert), labels=("PER", "LOC"), epochs=12, learning_rate=1e-2)
    losses: list[float] = []
    recipe = SpanRecipe(config, on_step=lambda step, loss: losses.append(loss))
    recipe.setup()
    trainable = [name for name, p in recipe.model.named_parameters() if p.requires_grad]
    assert any("lora_" in name for name in trainable) and any("classifier" in name for name in trainable)
    outcome = recipe.train(train)
    assert outcome.steps == 12 * 4 and sum(losses[-4:]) < sum(losses[:4]) / 2

    report = recipe.evaluate(test, train_rows=train)
    assert report["entities"] == 32 and set(report["per_label"]) == {"PER", "LOC"}
    assert report["baselines"]["gazetteer"]["f1"] == 1.0  # every test name was seen in train
    assert report["f1"] > 0.5, report

    predictions = recipe.predict([r["text"] for r in test])
    kind = Spans()
    for row, prediction in zip(test, predictions, strict=True):
        kind.normalise({"spans": prediction["spans"]}, ["PER", "LOC"], text=row["text"])  # valid against the text
        assert 0.0 < prediction["confidence"] <= 1.0
        # The least sure word is at most as sure as the entity words' mean: what the next round orders by.
        assert 1.0 - prediction["confidence"] - 1e-9 <= prediction["uncertainty"] < 1.0

    saved = recipe.save(tmp_path / "adapter", metrics=report)
    again = SpanRecipe.load(saved)
    assert [p["spans"] for p in again.predict([r["text"] for r in test])] == [p["spans"] for p in predictions]
