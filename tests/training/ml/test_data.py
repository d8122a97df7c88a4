"""Rows → examples, tokenisation, prompt masking, dynamic padding and length-grouped batches."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.data import (
    CURRICULUM_WINDOW_BATCHES,
    ERROR_AGREEMENT,
    ERROR_MISSING_FIELD,
    ERROR_NOT_TEXT,
    ERROR_UNKNOWN_LABEL,
    IGNORE_INDEX,
    DataError,
    chat_prompt_ids,
    encode_causal_lm,
    encode_classification,
    examples_from_rows,
    length_grouped_batches,
    make_collator,
    shard_batches,
)
from training.ml.modeling import load_tokenizer


def test_rows_become_examples_and_bad_rows_name_their_index_and_field():
    examples = examples_from_rows([{"text": "a", "label": "x", "agreement": 0.5}], task="classification")
    assert examples[0].source == "a" and examples[0].target == "x" and examples[0].agreement == 0.5
    pairs = examples_from_rows([{"prompt": "p", "response": "r"}], task="causal_lm")
    assert (pairs[0].source, pairs[0].target, pairs[0].agreement) == ("p", "r", None)

    cases = [
        ([{"text": "a", "label": "x"}, {"text": "", "label": "x"}], ERROR_MISSING_FIELD.format(index=1, field="text")),
        ([{"text": "a", "label": 3}], ERROR_NOT_TEXT.format(index=0, field="label")),
        ([{"text": "a", "label": "x", "agreement": 2}], ERROR_AGREEMENT.format(index=0)),
    ]
    for rows, message in cases:
        with pytest.raises(DataError) as caught:
            examples_from_rows(rows, task="classification")
        assert str(caught.value) == message
    with pytest.raises(DataError, match="'response'"):
        examples_from_rows([{"prompt": "p"}], task="causal_lm")


def test_classification_encoding_truncates_and_rejects_unknown_labels(tiny_bert):
    tokenizer = load_tokenizer(tiny_bert, task="classification")
    examples = examples_from_rows(
        [{"text": "the movie was good " * 20, "label": "pos"}, {"text": "bad", "label": "neg"}], task="classification"
    )
    features = encode_classification(examples, tokenizer, label2id={"neg": 0, "pos": 1}, max_length=16)
    assert len(features[0]["input_ids"]) == 16
    assert len(features[1]["input_ids"]) == 3
    assert [f["labels"] for f in features] == [1, 0]
    with pytest.raises(DataError) as caught:
        encode_classification(examples, tokenizer, label2id={"neg": 0}, max_length=16)
    assert str(caught.value) == ERROR_UNKNOWN_LABEL.format(index=0, label="pos", labels="neg")


def test_causal_lm_labels_mask_the_prompt_and_keep_the_response(tiny_llama):
    tokenizer = load_tokenizer(tiny_llama, task="causal_lm")
    examples = examples_from_rows([{"prompt": "what colour is the sky", "response": "the sky is blue"}], task="x")
    feature = encode_causal_lm(examples, tokenizer, max_length=128)[0]
    prompt_ids = chat_prompt_ids(tokenizer, "what colour is the sky")

    assert feature["input_ids"][: len(prompt_ids)] == prompt_ids
    assert feature["labels"][: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    response = feature["labels"][len(prompt_ids) :]
    assert IGNORE_INDEX not in response
    assert response == feature["input_ids"][len(prompt_ids) :]
    decoded = tokenizer.decode(response)
    assert decoded.startswith("the sky is blue")
    assert tokenizer.eos_token in decoded  # the model learns to stop


def test_causal_lm_truncation_cuts_the_response_first_and_keeps_some_response(tiny_llama):
    tokenizer = load_tokenizer(tiny_llama, task="causal_lm")
    long_answer = "the sky is blue " * 40
    examples = examples_from_rows(
        [{"prompt": "sky", "response": long_answer}, {"prompt": "what colour is the sky " * 40, "response": "blue"}],
        task="causal_lm",
    )
    short_prompt, long_prompt = encode_causal_lm(examples, tokenizer, max_length=48)
    for feature in (short_prompt, long_prompt):
        assert len(feature["input_ids"]) == 48
        assert any(label != IGNORE_INDEX for label in feature["labels"])
    # A short prompt is kept whole and the response cut; a long prompt keeps its end and the whole short response.
    prompt_length = len(chat_prompt_ids(tokenizer, "sky"))
    assert short_prompt["labels"].count(IGNORE_INDEX) == prompt_length
    kept = long_prompt["labels"].count(IGNORE_INDEX)
    assert long_prompt["input_ids"][:kept] == chat_prompt_ids(tokenizer, "what colour is the sky " * 40)[-kept:]
    assert tokenizer.decode(long_prompt["labels"][kept:]).startswith("blue" + tokenizer.eos_token)


def test_collators_pad_each_batch_to_its_own_longest_example(tiny_bert, tiny_llama):
    bert = load_tokenizer(tiny_bert, task="classification")
    rows = [{"text": "good", "label": "pos"}, {"text": "the movie was really quite bad", "label": "neg"}]
    features = encode_classification(
        examples_from_rows(rows, task="classification"), bert, label2id={"neg": 0, "pos": 1}, max_length=64
    )
    batch = make_collator(bert, task="classification")(features)
    assert batch["input_ids"].shape == (2, max(len(f["input_ids"]) for f in features))
    assert batch["attention_mask"][0].sum() == len(features[0]["input_ids"])
    assert batch["labels"].tolist() == [1, 0]

    llama = load_tokenizer(tiny_llama, task="causal_lm")
    pairs = examples_from_rows(
        [{"prompt": "sky", "response": "blue"}, {"prompt": "what colour is the grass", "response": "green"}], task="x"
    )
    features = encode_causal_lm(pairs, llama, max_length=64)
    batch = make_collator(llama, task="causal_lm")(features)
    width = max(len(f["input_ids"]) for f in features)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, width)
    short = min(range(2), key=lambda i: len(features[i]["input_ids"]))
    padding = width - len(features[short]["input_ids"])
    assert batch["labels"][short, -padding:].tolist() == [IGNORE_INDEX] * padding


def test_length_grouping_is_seeded_complete_and_groups_similar_lengths():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    batches = length_grouped_batches(lengths, batch_size=8, seed=3, epoch=0)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert batches == length_grouped_batches(lengths, batch_size=8, seed=3, epoch=0)
    assert batches != length_grouped_batches(lengths, batch_size=8, seed=3, epoch=1)
    assert batches != length_grouped_batches(lengths, batch_size=8, seed=4, epoch=0)

    def padding(groups):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in groups)

    random_batches = [list(range(i, i + 8)) for i in range(0, 1000, 8)]
    assert padding(batches) < padding(random_batches) / 5


def _order_kept(batches: list[list[int]], agreement: list[float], slack: int) -> bool:
    """Of any two examples at least `slack` positions apart in the epoch, the earlier has at least the agreement."""
    flat = [agreement[i] for batch in batches for i in batch]
    # The lowest agreement up to position p must be >= the highest from p + slack on.
    lowest_so_far = np.minimum.accumulate(flat)
    highest_from = np.maximum.accumulate(flat[::-1])[::-1]
    return all(lowest_so_far[p] >= highest_from[p + slack] for p in range(len(flat) - slack))


@pytest.mark.parametrize("count", [40, 300, 2000])
@pytest.mark.parametrize("levels", [None, 3])
def test_agreement_curriculum_goes_from_easy_to_hard_at_every_size(count, levels):
    """Below a length bucket (800 rows at batch 16) the length sort used to erase the order entirely."""
    batch_size = 16 if count > 40 else 8
    rng = np.random.default_rng(count)
    # A score per item, or three annotators' levels: everyone agrees, two of three, none.
    scores = rng.random(count) if levels is None else rng.choice([1.0, 2 / 3, 1 / 3], size=count)
    agreement = scores.tolist()
    lengths = rng.integers(1, 120, size=count).tolist()
    batches = length_grouped_batches(lengths, batch_size=batch_size, seed=0, epoch=0, agreement=agreement)
    assert sorted(i for batch in batches for i in batch) == list(range(count))
    assert all(len(batch) == batch_size for batch in batches[:-1])
    slack = batch_size * CURRICULUM_WINDOW_BATCHES
    assert _order_kept(batches, agreement, slack)
    means = [float(np.mean([agreement[i] for i in batch])) for batch in batches]
    assert means[0] > means[-1]
    if levels is not None:  # ties are shuffled anew each epoch; distinct scores have one order only
        assert batches != length_grouped_batches(lengths, batch_size=batch_size, seed=0, epoch=1, agreement=agreement)


def test_agreement_curriculum_still_groups_lengths_within_a_level():
    count, batch_size = 300, 8
    agreement = [1.0] * 150 + [0.5] * 150
    lengths = [(i * 37) % 101 + 1 for i in range(count)]
    batches = length_grouped_batches(lengths, batch_size=batch_size, seed=1, epoch=0, agreement=agreement)
    assert {i for batch in batches[: 150 // batch_size] for i in batch} <= set(range(150))

    def padding(groups):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in groups)

    shuffled = np.random.default_rng(0).permutation(count).tolist()
    random_batches = [shuffled[i : i + batch_size] for i in range(0, count, batch_size)]
    assert padding(batches) < padding(random_batches) / 5


def test_missing_agreement_counts_as_easy():
    agreement: list[float | None] = [0.0] * 200
    agreement[150] = None
    batches = length_grouped_batches([3] * 200, batch_size=1, seed=0, epoch=0, agreement=agreement)
    assert batches[0] == [150]


def test_shards_split_an_epoch_evenly_between_processes():
    batches = [[i] for i in range(5)]
    assert shard_batches(batches, rank=0, world_size=2) == [[0], [2], [4]]
    assert shard_batches(batches, rank=1, world_size=2) == [[1], [3], [0]]
    assert shard_batches(batches, rank=0, world_size=1) is batches
