"""The span recipe on a tiny BERT: labels aligned through the offset mapping (first sub-token only), LoRA
trains, seqeval's entity-level figures beside the gazetteer baseline, predictions back as valid spans, and a
saved adapter that predicts the same after loading."""

from __future__ import annotations

import json
import random

import pytest
import torch

from annotation.tasktypes import Spans, word_tokens
from training.ml.checkpoints import STATE_FILE, CheckpointError, list_checkpoints
from training.ml.spans import Gazetteer, SpanRecipe, SpanTrainingConfig, entity_scores
from training.ml.token_labels import spans_from_token_tags

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


def resumable_config(tiny_bert, **changes) -> SpanTrainingConfig:
    # Dropout on (LoRA's and BERT's own): a resume must restore the random state, not only the weights.
    settings = dict(
        base_model_dir=str(tiny_bert), labels=("PER", "LOC"), epochs=3, batch_size=8, learning_rate=1e-2,
        lora_dropout=0.1, seed=3,
    )
    return SpanTrainingConfig(**{**settings, **changes})


@pytest.mark.slow
def test_an_interrupted_span_run_resumes_from_its_checkpoint_as_if_never_stopped(tiny_bert, tmp_path):
    train = rows(20, seed=4)  # 3 batches an epoch, the last one short: 9 steps
    config = resumable_config(tiny_bert)
    straight_progress: list[dict] = []
    straight = SpanRecipe(config, on_progress=straight_progress.append, checkpoint_dir=tmp_path / "straight")
    straight.setup()
    assert straight.resumed_from is None
    assert straight.train(train).steps == 9
    # Each epoch's end (save_steps 0), the two newest kept: what the classification recipe keeps.
    assert [p.name for p in list_checkpoints(tmp_path / "straight")] == ["step-000006", "step-000009"]

    seen: list[dict] = []
    stopped = SpanRecipe(
        config, on_progress=seen.append, should_stop=lambda: len(seen) >= 4, checkpoint_dir=tmp_path / "ck"
    )
    stopped.setup()
    outcome = stopped.train(train)
    assert outcome.cancelled and outcome.steps == 4
    # step 3 (the first epoch's end) and step 4, where the cancel stopped it
    assert [p.name for p in list_checkpoints(tmp_path / "ck")] == ["step-000003", "step-000004"]
    state = json.loads((tmp_path / "ck" / "step-000004" / STATE_FILE).read_text())["state"]
    assert (state["step"], state["epoch"], state["step_in_epoch"]) == (4, 1, 1)

    resumed_progress: list[dict] = []
    resumed = SpanRecipe(config, on_progress=resumed_progress.append, checkpoint_dir=tmp_path / "again",
                         resume_from=tmp_path / "ck")
    resumed.setup()
    assert resumed.resumed_from == tmp_path / "ck" / "step-000004" and resumed.state.step == 4
    finished = resumed.train(train)
    assert not finished.cancelled and finished.steps == 9 == finished.total_steps
    assert [p["step"] for p in resumed_progress] == list(range(5, 10))
    for ours, theirs in zip(resumed_progress, straight_progress[4:], strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
    for name, param in resumed.params.items():
        torch.testing.assert_close(param, straight.params[name], rtol=1e-4, atol=1e-5)
    assert [p["step"] for p in seen] == [1, 2, 3, 4]


def test_a_span_checkpoint_of_other_settings_is_refused(tiny_bert, tmp_path):
    first = SpanRecipe(resumable_config(tiny_bert, epochs=1, save_steps=1), checkpoint_dir=tmp_path / "ck")
    first.setup()
    first.train(rows(8, seed=4)[:8])
    assert [p.name for p in list_checkpoints(tmp_path / "ck")] == ["step-000001"]
    other = SpanRecipe(resumable_config(tiny_bert, epochs=1, learning_rate=5e-3), checkpoint_dir=tmp_path / "ck")
    with pytest.raises(CheckpointError, match="different spec"):
        other.setup()


def test_a_predicted_span_keeps_the_combining_accent_its_tokenizer_left_out():
    """An accent-stripping tokenizer gives "zoé" (e + U+0301) the offsets of "zoe"; the span is the whole word, as
    annotators' words are (word_tokens), and a word piece cut mid-word still widens to the word's end."""
    text = "zoe\u0301 met bobby"
    tags = ["B-PER", "O", "B-PER", None]
    offsets = [(0, 3), (5, 8), (9, 12), (12, 13)]
    assert spans_from_token_tags(tags, offsets, text) == [
        {"start": 0, "end": 4, "label": "PER"},
        {"start": 9, "end": 14, "label": "PER"},
    ]
    assert word_tokens(text)[0] == (0, 4)
