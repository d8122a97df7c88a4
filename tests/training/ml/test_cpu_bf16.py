"""bf16 on the CPU: when the recipe uses it, and that holding frozen weights in bf16 changes nothing but speed."""

from __future__ import annotations

import torch
from torch import nn

from tests.fixtures.tiny_models import causal_lm_spec, classification_spec, qa_rows
from training.ml import runtime as runtime_module
from training.ml.modeling import build_model, load_tokenizer, store_frozen_matmul_weights_in_bf16
from training.ml.recipe import STATUS_COMPLETED, Recipe
from training.ml.runtime import runtime_start


def test_auto_bf16_on_the_cpu_only_where_the_caller_says_it_pays_and_the_cpu_multiplies_bf16(monkeypatch):
    monkeypatch.setattr(runtime_module.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime_module, "cpu_multiplies_bf16", lambda: True)
    assert runtime_start(None, cpu_bf16=True).bf16
    assert not runtime_start(None, cpu_bf16=False).bf16
    assert not runtime_start(False, cpu_bf16=True).bf16  # the spec's explicit choice wins
    monkeypatch.setattr(runtime_module, "cpu_multiplies_bf16", lambda: False)
    assert not runtime_start(None, cpu_bf16=True).bf16
    assert runtime_start(True).bf16


def test_frozen_linear_weights_round_like_autocast_and_come_back_exactly(registry):
    spec = causal_lm_spec()
    model_dir = registry.resolve(spec.base_model)
    tokenizer = load_tokenizer(model_dir, task=spec.task)
    model = build_model(spec, model_dir, pad_token_id=tokenizer.pad_token_id)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    ids = torch.tensor([[3, 5, 7, 11, 2, 9]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(input_ids=ids).logits.float()

    restore = store_frozen_matmul_weights_in_bf16(model)
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    frozen = [m.weight for m in model.modules() if isinstance(m, nn.Linear) and not m.weight.requires_grad]
    converted = [w for w in frozen if id(w) not in embeddings]
    assert converted and all(w.dtype == torch.bfloat16 for w in converted)
    assert all(w.dtype == torch.float32 for w in frozen if id(w) in embeddings)  # tied lm_head
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)  # LoRA stays float32
    assert all(m.weight.dtype == torch.float32 for m in model.modules() if isinstance(m, nn.Embedding))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        held = model(input_ids=ids).logits.float()
    torch.testing.assert_close(held, expected)  # the same products autocast computes from float32 weights

    restore()
    for name, p in model.named_parameters():
        assert p.dtype == torch.float32
        assert torch.equal(p, before[name]), name


def test_the_recipe_trains_a_causal_lm_in_cpu_bf16_and_hands_back_a_float32_model(registry, tmp_path):
    spec = causal_lm_spec(epochs=3, bf16=True, learning_rate=5e-3)
    recipe = Recipe(
        spec, train=qa_rows(24, seed=1), validation=qa_rows(8, seed=2), checkpoint_dir=tmp_path, registry=registry
    )
    recipe.setup()
    assert recipe.runtime.bf16 and recipe.packed  # the packing check ran before the weights changed dtype
    assert any(p.dtype == torch.bfloat16 for p in recipe.model.parameters())
    before = recipe._validation_metrics()["loss"]
    assert recipe.train().status == STATUS_COMPLETED
    assert all(p.dtype == torch.float32 for p in recipe.model.parameters())
    assert recipe._validation_metrics()["loss"] < before  # it learnt


def test_classification_stays_float32_on_the_cpu_when_bf16_is_left_to_the_recipe(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_module, "cpu_multiplies_bf16", lambda: True)
    recipe = Recipe(
        classification_spec(), train=[{"text": t, "label": y} for t, y in [("a b", "x"), ("c d", "y")] * 6],
        checkpoint_dir=tmp_path, registry=registry,
    )
    recipe.setup()
    assert not recipe.runtime.bf16
    assert all(p.dtype == torch.float32 for p in recipe.model.parameters())
