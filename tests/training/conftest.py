"""Tiny models for the training tests: built from a config, with a tokenizer trained on the fly.

A 2-layer BERT and a 2-layer Llama with hidden size 32 train in well under a second a run on a CPU, so the
tests exercise the real recipe (PEFT, optimizer, checkpoints, artifacts) without any downloaded weights.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from training.ml.registry import ModelRegistry
from training.spec import TrainingSpec

POSITIVE = ["good", "great", "lovely", "excellent", "happy"]
NEGATIVE = ["bad", "awful", "terrible", "sad", "poor"]
FILLER = ["the", "movie", "was", "really", "quite", "film", "plot", "acting", "today", "and", "very"]
TOPICS = {"sky": "blue", "grass": "green", "sun": "hot", "snow": "cold", "night": "dark", "fire": "red"}
PRETRAIN_STEPS = 25
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def sentiment_rows(count: int, seed: int) -> list[dict]:
    """Short reviews (2 to 6 words) whose label is given away by one sentiment word."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = "pos" if index % 2 == 0 else "neg"
        words = rng.sample(FILLER, rng.randint(1, 5))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        rows.append({"text": " ".join(words), "label": label, "agreement": round(rng.random(), 2)})
    return rows


# High learning rates and no warmup, so a few dozen steps on the tiny models visibly learn.
TINY_CLASSIFICATION = dict(base_model="tiny-bert", learning_rate=2e-2, epochs=4, batch_size=8, warmup_ratio=0.0)
TINY_CAUSAL_LM = dict(base_model="tiny-llama", learning_rate=1e-2, epochs=2, batch_size=8, warmup_ratio=0.0)


def classification_spec(method: str = "lora", **changes) -> TrainingSpec:
    settings = {**TINY_CLASSIFICATION, "early_stopping_patience": 0, **changes}
    return dataclasses.replace(TrainingSpec.defaults("classification", method=method), **settings)


def causal_lm_spec(method: str = "lora", **changes) -> TrainingSpec:
    settings = {**TINY_CAUSAL_LM, "early_stopping_patience": 0, "max_length": 64, "max_new_tokens": 6, **changes}
    return dataclasses.replace(TrainingSpec.defaults("causal_lm", method=method), **settings)


def qa_rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        topic = rng.choice(list(TOPICS))
        rows.append({"prompt": f"what colour is the {topic}", "response": f"the {topic} is {TOPICS[topic]}"})
    return rows


def _corpus() -> list[str]:
    sentences = [" ".join([*FILLER, *POSITIVE, *NEGATIVE])]
    sentences += [f"what colour is the {t} the {t} is {v}" for t, v in TOPICS.items()]
    return sentences * 3


def _bert_tokenizer() -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend.train_from_iterator(_corpus(), trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _llama_tokenizer() -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "<|im_start|>", "<|im_end|>", "<pad>"]
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="<|im_end|>", unk_token="<unk>", pad_token="<pad>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _pretrained_encoder(config: BertConfig, tokenizer: PreTrainedTokenizerFast) -> BertModel:
    """A random BERT knows nothing, and adapters on it learn too slowly to test; like a real base model, this one
    is first trained (fully, with a throwaway head) until its [CLS] state separates the sentiment words."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rows = sentiment_rows(128, seed=99)
    batch = tokenizer([r["text"] for r in rows], padding=True, return_tensors="pt")
    labels = torch.tensor([r["label"] == "pos" for r in rows], dtype=torch.long)
    for _ in range(PRETRAIN_STEPS):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.bert


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A BertModel checkpoint (no classifier head: the recipe adds one, as with MiniLM)."""
    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = _bert_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    _pretrained_encoder(config, tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = _llama_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def registry(tiny_bert, tiny_llama, tmp_path_factory) -> ModelRegistry:
    """The tiny models under registry names, as settings would add extra models."""
    return ModelRegistry(
        extra={"tiny-bert": tiny_bert, "tiny-llama": tiny_llama}, cache_dir=tmp_path_factory.mktemp("model-cache")
    )
