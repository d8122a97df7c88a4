"""Artifacts: a saved model reloads (without unpickling) and predicts exactly what the trained one did."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from tests.fixtures.tiny_models import causal_lm_spec, classification_spec, qa_rows, sentiment_rows
from training.ml.artifacts import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CARD_FILE,
    RUN_FILE,
    ArtifactError,
    load_for_inference,
)
from training.ml.predict import Predictor, class_probabilities, generate_responses
from training.ml.recipe import Recipe

TEXTS = ["the movie was good", "awful plot", "really quite lovely acting today", "sad"]
PROMPTS = ["what colour is the sky", "what colour is the snow", "what colour is the fire"]


def _refuse(*args, **kwargs):
    raise AssertionError("artifacts must load without unpickling")


def forbid_unpickling(patch: pytest.MonkeyPatch) -> None:
    """Make any torch.load or pickle load fail loudly while a model is rebuilt."""
    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
        patch.setattr(module, name, _refuse)


def trained(spec, registry, tmp_path) -> Recipe:
    rows = sentiment_rows if spec.task == "classification" else qa_rows
    recipe = Recipe(spec, train=rows(48, seed=1), checkpoint_dir=tmp_path / "ck", registry=registry)
    recipe.setup()
    recipe.train()
    return recipe


@pytest.mark.parametrize("method", ["lora", "ia3", "full"])
def test_classifier_round_trip_gives_the_same_predictions(method, registry, tmp_path, monkeypatch):
    spec = classification_spec(method, epochs=2, learning_rate=3e-3 if method == "full" else 2e-2)
    recipe = trained(spec, registry, tmp_path)
    expected = class_probabilities(
        recipe.model, recipe.tokenizer, TEXTS, max_length=spec.max_length, batch_size=2, device=torch.device("cpu")
    )
    path = recipe.save(tmp_path / "artifact", snapshot_hash="f" * 64, metrics={"accuracy": 0.9, "per_class": {}})

    names = {p.name for p in path.iterdir()}
    if method == "full":
        assert "model.safetensors" in names and ADAPTER_WEIGHTS not in names
    else:
        assert {ADAPTER_WEIGHTS, ADAPTER_CONFIG} <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)
    info = json.loads((path / RUN_FILE).read_text())
    assert info["snapshot_hash"] == "f" * 64
    assert info["labels"] == ["neg", "pos"] and info["label2id"] == {"neg": 0, "pos": 1}
    assert info["spec"] == spec.to_dict() and info["metrics"]["accuracy"] == 0.9
    assert {"torch", "transformers", "peft", "python"} <= set(info["versions"])
    card = (path / CARD_FILE).read_text()
    assert "tiny-bert" in card and "| accuracy | 0.9 |" in card

    with monkeypatch.context() as patch:
        forbid_unpickling(patch)
        predictor = Predictor.load(path, registry=registry, device=torch.device("cpu"))
    results = predictor.classify(TEXTS, batch_size=3)
    got = np.array([[r.probabilities[label] for label in predictor.labels] for r in results])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert [r.label for r in results] == [predictor.labels[i] for i in expected.argmax(1)]
    assert all(r.confidence == max(r.probabilities.values()) and r.uncertainty >= 0 for r in results)
    with pytest.raises(ValueError, match="classify"):
        predictor.generate(["x"])


def test_causal_lm_round_trip_generates_the_same_text(registry, tmp_path, monkeypatch):
    spec = causal_lm_spec(epochs=2, max_new_tokens=5)
    recipe = trained(spec, registry, tmp_path)
    expected = generate_responses(
        recipe.model,
        recipe.tokenizer,
        PROMPTS,
        max_length=spec.max_length,
        max_new_tokens=5,
        batch_size=3,
        device=torch.device("cpu"),
    )
    path = recipe.save(tmp_path / "artifact", snapshot_hash="abc", metrics={})
    assert (path / "chat_template.jinja").is_file() or "chat_template" in (path / "tokenizer_config.json").read_text()

    with monkeypatch.context() as patch:
        forbid_unpickling(patch)
        predictor = Predictor.load(path, registry=registry, device=torch.device("cpu"))
    assert predictor.generate(PROMPTS, batch_size=2) == expected
    # Batched (left-padded) generation says what one-at-a-time generation says.
    assert [predictor.generate([p], batch_size=1)[0] for p in PROMPTS] == expected
    with pytest.raises(ValueError, match="generate"):
        predictor.classify(["x"])


def test_saving_again_replaces_the_artifact_whole(registry, tmp_path):
    recipe = trained(classification_spec(epochs=1), registry, tmp_path)
    path = recipe.save(tmp_path / "artifact", snapshot_hash="one", metrics={})
    (path / "stray.txt").write_text("left over")
    recipe.save(tmp_path / "artifact", snapshot_hash="two", metrics={})
    assert not (path / "stray.txt").exists()
    assert json.loads((path / RUN_FILE).read_text())["snapshot_hash"] == "two"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_folders_that_are_not_artifacts_are_refused(registry, tmp_path):
    with pytest.raises(ArtifactError, match=RUN_FILE):
        load_for_inference(tmp_path, registry=registry)
    recipe = trained(classification_spec(epochs=1), registry, tmp_path)
    path = recipe.save(tmp_path / "artifact", snapshot_hash="x", metrics={})
    (path / ADAPTER_WEIGHTS).rename(path / "adapter_model.bin")
    with pytest.raises(ArtifactError, match=ADAPTER_WEIGHTS):
        load_for_inference(path, registry=registry)
