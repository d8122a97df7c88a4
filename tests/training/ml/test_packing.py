"""Packed causal-LM batches: the layout, the same loss and gradients as padded batches, no attention across examples."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM

from tests.fixtures.tiny_models import causal_lm_spec, qa_rows
from training.ml.data import IGNORE_INDEX, encode_causal_lm, examples_from_rows, make_collator, pack_causal_lm
from training.ml.modeling import build_model, load_tokenizer, packing_isolates_sequences
from training.ml.recipe import STATUS_COMPLETED, Recipe, packed_causal_lm_loss


def features_of(tokenizer, rows):
    return encode_causal_lm(examples_from_rows(rows, task="causal_lm"), tokenizer, max_length=64)


ROWS = [
    {"prompt": "sky", "response": "the sky is blue"},
    {"prompt": "what colour is the grass today", "response": "green"},
    {"prompt": "fire", "response": "the fire is red and hot"},
]


def test_packing_puts_examples_back_to_back_with_restarting_positions_and_shifted_targets(tiny_llama):
    tokenizer = load_tokenizer(tiny_llama, task="causal_lm")
    features = features_of(tokenizer, ROWS)
    packed = pack_causal_lm(features)
    lengths = [len(f["input_ids"]) for f in features]
    assert packed["input_ids"].shape == packed["position_ids"].shape == packed["targets"].shape == (1, sum(lengths))
    assert packed["input_ids"][0].tolist() == [t for f in features for t in f["input_ids"]]
    assert packed["position_ids"][0].tolist() == [i for n in lengths for i in range(n)]
    start = 0
    for feature, length in zip(features, lengths, strict=True):
        targets = packed["targets"][0, start : start + length].tolist()
        # Position t predicts token t + 1 of the same example; the last one predicts nothing (the next is another's).
        assert targets == [*feature["labels"][1:], IGNORE_INDEX]
        start += length


@pytest.fixture
def lora_llama(tiny_llama):
    model = build_model(causal_lm_spec(lora_dropout=0.0), tiny_llama, pad_token_id=0)
    # LoRA's B starts at zero; random B makes the adapter matter, so gradients reach every LoRA matrix.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.1)
    return model


def test_packed_loss_and_gradients_equal_the_padded_batchs(tiny_llama, lora_llama):
    tokenizer = load_tokenizer(tiny_llama, task="causal_lm")
    features = features_of(tokenizer, ROWS)
    trainable = [p for p in lora_llama.parameters() if p.requires_grad]

    padded_loss = lora_llama(**make_collator(tokenizer, task="causal_lm")(features)).loss
    padded_grads = torch.autograd.grad(padded_loss, trainable)
    packed_loss = packed_causal_lm_loss(lora_llama, pack_causal_lm(features))
    packed_grads = torch.autograd.grad(packed_loss, trainable)

    assert packed_loss.item() == pytest.approx(padded_loss.item(), rel=1e-5)
    for packed, padded in zip(packed_grads, padded_grads, strict=True):
        torch.testing.assert_close(packed, padded, rtol=1e-4, atol=1e-6)


def test_no_token_attends_to_another_packed_example(tiny_llama, lora_llama):
    tokenizer = load_tokenizer(tiny_llama, task="causal_lm")
    first, second = features_of(tokenizer, ROWS[:2])
    changed = dict(first, input_ids=[(t + 7) % len(tokenizer) for t in first["input_ids"]])
    lora_llama.eval()

    def second_logits(features):
        packed = pack_causal_lm(features)
        keep = torch.ones_like(packed["input_ids"], dtype=torch.bool)
        logits = lora_llama(
            input_ids=packed["input_ids"], position_ids=packed["position_ids"], logits_to_keep=keep, use_cache=False
        )
        return logits.logits.reshape(packed["input_ids"].shape[1], -1)[len(first["input_ids"]) :]

    with torch.no_grad():
        alone = lora_llama(input_ids=torch.tensor([second["input_ids"]])).logits[0]
        torch.testing.assert_close(second_logits([first, second]), alone, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(second_logits([changed, second]), alone, rtol=1e-4, atol=1e-5)


class PositionBlindLlama(LlamaForCausalLM):
    """A model that drops position ids: packed examples would see each other, so packing must be refused."""

    def forward(self, input_ids=None, position_ids=None, **kwargs):
        return super().forward(input_ids=input_ids, **kwargs)


def test_the_packing_check_accepts_a_model_that_isolates_and_refuses_one_that_leaks(tiny_llama, lora_llama):
    assert packing_isolates_sequences(lora_llama)
    assert lora_llama.training  # the check leaves the mode as it found it
    assert not packing_isolates_sequences(PositionBlindLlama.from_pretrained(tiny_llama))


def test_the_recipe_trains_packed_to_the_same_weights_as_padded(registry, tmp_path):
    spec = causal_lm_spec(lora_dropout=0.0, epochs=1, bf16=False)  # equal in float32; bf16 is its own test
    trained = {}
    for packed in (True, False):
        recipe = Recipe(spec, train=qa_rows(24, seed=1), checkpoint_dir=tmp_path / str(packed), registry=registry)
        recipe.setup()
        assert recipe.packed  # the tiny Llama isolates packed examples, so the recipe packs
        recipe.packed = packed
        assert recipe.train().status == STATUS_COMPLETED
        trained[packed] = {name: param.detach().clone() for name, param in recipe.params.items()}
    for name, weights in trained[True].items():
        torch.testing.assert_close(weights, trained[False][name], rtol=1e-4, atol=1e-5)
