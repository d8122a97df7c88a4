"""Examples, tokenisation and batching.

Rows are plain dicts, as a snapshot exports them: {"text", "label"} for classification, {"prompt", "response"}
for causal-LM fine-tuning, each optionally with "agreement" (0..1, how much the annotators agreed). Two things
make training fast without changing what is learnt: batches are padded only to their own longest example
(dynamic padding), and examples of similar length are batched together (length grouping: a seeded shuffle,
then sorting inside large buckets, then a seeded shuffle of the batches), so little compute goes to padding.
For causal LMs the prompt tokens are masked out of the loss (label -100): the model learns the response only,
and a training micro-batch is packed into one row with no padding at all (`pack_causal_lm`): position ids restart
at 0 for every example, which is what lets the model's attention mask keep each example to itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding, PreTrainedTokenizerBase

from training.spec import TASK_CLASSIFICATION

IGNORE_INDEX = -100
MEGABATCH_FACTOR = 50
# The curriculum sorts by length inside windows of at most this many batches (where agreement differs).
CURRICULUM_WINDOW_BATCHES = 4
UNSCORED_AGREEMENT = 1.0

FIELDS = {TASK_CLASSIFICATION: ("text", "label")}
GENERATION_FIELDS = ("prompt", "response")

ERROR_NOT_A_ROW = "row {index}: must be an object with the fields {fields}"
ERROR_MISSING_FIELD = "row {index}: field {field!r} is missing or empty"
ERROR_NOT_TEXT = "row {index}: field {field!r} must be text"
ERROR_AGREEMENT = "row {index}: field 'agreement' must be a number between 0 and 1"
ERROR_UNKNOWN_LABEL = "row {index}: label {label!r} is not one of the run's labels ({labels})"
ERROR_NO_EXAMPLES = "no {split} examples"


class DataError(ValueError):
    """Training data that cannot be used, with the row that is wrong."""


@dataclass(frozen=True)
class Example:
    """One training example: `source` is the text or the prompt, `target` the label or the response."""

    source: str
    target: str
    agreement: float | None = None


def examples_from_rows(rows: Iterable[Mapping[str, Any]], *, task: str) -> list[Example]:
    """Check and convert rows; the first bad row raises DataError naming its index and field."""
    source_field, target_field = FIELDS.get(task, GENERATION_FIELDS)
    examples = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataError(ERROR_NOT_A_ROW.format(index=index, fields=f"{source_field!r}, {target_field!r}"))
        values = []
        for field in (source_field, target_field):
            value = row.get(field)
            if value is None or value == "":
                raise DataError(ERROR_MISSING_FIELD.format(index=index, field=field))
            if not isinstance(value, str):
                raise DataError(ERROR_NOT_TEXT.format(index=index, field=field))
            values.append(value)
        agreement = row.get("agreement")
        if agreement is not None and not (
            isinstance(agreement, int | float) and not isinstance(agreement, bool) and 0.0 <= agreement <= 1.0
        ):
            raise DataError(ERROR_AGREEMENT.format(index=index))
        examples.append(Example(source=values[0], target=values[1], agreement=agreement))
    return examples


def encode_classification(
    examples: Sequence[Example], tokenizer: PreTrainedTokenizerBase, *, label2id: Mapping[str, int], max_length: int
) -> list[dict[str, Any]]:
    """Token ids (unpadded, truncated to `max_length`) and the label id of every example."""
    for index, example in enumerate(examples):
        if example.target not in label2id:
            raise DataError(ERROR_UNKNOWN_LABEL.format(index=index, label=example.target, labels=", ".join(label2id)))
    if not examples:
        return []
    encoded = tokenizer([e.source for e in examples], truncation=True, max_length=max_length)
    features = []
    for index, example in enumerate(examples):
        feature = {key: values[index] for key, values in encoded.items()}
        feature["labels"] = label2id[example.target]
        features.append(feature)
    return features


def chat_prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """The prompt as the chat template renders it, ending where the assistant's answer begins."""
    return list(
        tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=False
        )
    )


def encode_causal_lm(
    examples: Sequence[Example], tokenizer: PreTrainedTokenizerBase, *, max_length: int
) -> list[dict[str, Any]]:
    """Chat-formatted prompt + response; labels are -100 over the prompt so only the response is learnt.

    The masked part is the longest common prefix of the rendered prompt and the rendered conversation, which is
    the whole prompt for usual templates and still correct when a tokenizer merges across the boundary.
    When too long, the response is cut first; a prompt longer than half of `max_length` keeps its last tokens.
    """
    features = []
    for example in examples:
        prompt_ids = chat_prompt_ids(tokenizer, example.source)
        full_ids = list(
            tokenizer.apply_chat_template(
                [
                    {"role": "user", "content": example.source},
                    {"role": "assistant", "content": example.target},
                ],
                tokenize=True,
                return_dict=False,
            )
        )
        masked = _common_prefix_length(prompt_ids, full_ids)
        prompt_part, response_part = full_ids[:masked], full_ids[masked:]
        if len(prompt_part) + len(response_part) > max_length:
            prompt_keep = min(len(prompt_part), max(max_length // 2, max_length - len(response_part)))
            prompt_part = prompt_part[len(prompt_part) - prompt_keep :]
            response_part = response_part[: max_length - prompt_keep]
        input_ids = prompt_part + response_part
        features.append(
            {
                "input_ids": input_ids,
                "attention_mask": [1] * len(input_ids),
                "labels": [IGNORE_INDEX] * len(prompt_part) + response_part,
            }
        )
    return features


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def make_collator(tokenizer: PreTrainedTokenizerBase, *, task: str, pad_to_multiple_of: int | None = None) -> Any:
    """Pad each batch to its own longest example; causal-LM labels are padded with -100."""
    if task == TASK_CLASSIFICATION:
        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt")
    return DataCollatorForSeq2Seq(
        tokenizer, label_pad_token_id=IGNORE_INDEX, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt"
    )


def pack_causal_lm(features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Every example of a micro-batch back to back in one row: `input_ids`, `position_ids` and `targets`, (1, T).

    `position_ids` restart at 0 at each example; transformers' causal mask reads those restarts as sequence
    boundaries (a block-diagonal causal mask), so no token attends to another example. `targets` are already
    shifted: the token each position must predict, -100 where nothing is learnt (the prompt, and the last token
    of every example, whose next token belongs to the next example). T is the sum of the examples' lengths.
    """
    input_ids: list[int] = []
    position_ids: list[int] = []
    targets: list[int] = []
    for feature in features:
        ids, labels = list(feature["input_ids"]), list(feature["labels"])
        input_ids += ids
        position_ids += range(len(ids))
        targets += [*labels[1:], IGNORE_INDEX]
    return {
        "input_ids": torch.tensor([input_ids], dtype=torch.long),
        "position_ids": torch.tensor([position_ids], dtype=torch.long),
        "targets": torch.tensor([targets], dtype=torch.long),
    }


def length_grouped_batches(
    lengths: Sequence[int],
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    agreement: Sequence[float | None] | None = None,
) -> list[list[int]]:
    """The batches (lists of example indices) of one epoch, the same for the same seed and epoch.

    Without `agreement`: shuffle, cut into buckets of `MEGABATCH_FACTOR` batches, sort each bucket by length
    (longest first), cut into batches, shuffle the batches. With `agreement` (curriculum): see `_curriculum_order`.
    """
    rng = np.random.default_rng([seed, epoch])
    count = len(lengths)
    lengths_array = np.asarray(lengths)
    if agreement is not None:
        order = _curriculum_order(lengths_array, agreement, batch_size=batch_size, rng=rng)
        return [order[i : i + batch_size].tolist() for i in range(0, count, batch_size)]
    order = rng.permutation(count)
    bucket_size = batch_size * MEGABATCH_FACTOR
    batches: list[list[int]] = []
    for start in range(0, count, bucket_size):
        bucket = order[start : start + bucket_size]
        bucket = bucket[np.argsort(-lengths_array[bucket], kind="stable")]
        batches.extend(bucket[i : i + batch_size].tolist() for i in range(0, len(bucket), batch_size))
    rng.shuffle(batches)
    return batches


def _curriculum_order(
    lengths: np.ndarray, agreement: Sequence[float | None], *, batch_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Examples from high to low agreement (ties shuffled), length-sorted only where that cannot undo the order.

    Sorting by length inside a bucket of `MEGABATCH_FACTOR` batches erased the curriculum of any set smaller
    than one bucket (800 rows at batch 16). Here the ordered examples are cut into windows: a run of equal
    agreement is one window (up to a bucket; sorting inside it moves nothing past a different score), and
    anything else a window of at most `CURRICULUM_WINDOW_BATCHES` batches. Each window is sorted by length,
    longest first. So an example never moves more than one short window away from its place in the
    agreement order, at any size: of two examples that far apart, the earlier has at least the agreement.
    """
    count = len(lengths)
    scores = np.array([UNSCORED_AGREEMENT if a is None else a for a in agreement], dtype=float)
    order = np.lexsort((rng.random(count), -scores))
    ordered_scores = scores[order]
    # run_end[i]: one past the last position holding the same score as position i (the end of its tie run).
    starts = np.flatnonzero(np.r_[True, ordered_scores[1:] != ordered_scores[:-1]])
    ends = np.r_[starts[1:], count]
    run_end = np.repeat(ends, ends - starts)
    window_rows = batch_size * CURRICULUM_WINDOW_BATCHES
    bucket_rows = batch_size * MEGABATCH_FACTOR
    pieces: list[np.ndarray] = []
    start = 0
    while start < count:
        tie_end = int(run_end[start])
        end = min(tie_end, start + bucket_rows) if tie_end - start >= window_rows else min(start + window_rows, count)
        window = order[start:end]
        pieces.append(window[np.argsort(-lengths[window], kind="stable")])
        start = end
    return np.concatenate(pieces) if pieces else order


def shard_batches(batches: list[list[int]], *, rank: int, world_size: int) -> list[list[int]]:
    """This process's share of an epoch's batches; the list is padded by wrapping so every process steps equally."""
    if world_size == 1:
        return batches
    per_rank = math.ceil(len(batches) / world_size)
    padded = [batches[i % len(batches)] for i in range(per_rank * world_size)]
    return padded[rank::world_size]


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Evaluation batches: sorted by length so padding is minimal; callers restore the original order."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
