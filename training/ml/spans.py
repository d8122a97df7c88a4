"""Token classification for span projects (no Django): setup → train → evaluate → predict → save.

The base encoder (MiniLM, or any BERT-like folder) gets a token-classification head and LoRA adapters (peft's
TOKEN_CLS task: the head is trained with them). Labels come from the spans through the tokenizer's offset
mapping (training/ml/token_labels.py): each word's first sub-token carries its BIO tag, the others and the
special tokens are left out of the loss (-100), as transformers' token-classification example does.

Evaluation is entity-level (seqeval, conlleval semantics: an entity counts when its type and its whole extent
match) on word tokens (`annotation.tasktypes.word_tokens`, the words annotators select), so the figures do not
depend on the model's sub-word tokenizer and the baseline is scored the same way. The baseline is a gazetteer:
the entity strings of the train split, matched longest first on word boundaries (what a list of names gets you
without a model). Predictions come back as spans with the mean probability of their tokens' tags.

Given a `checkpoint_dir`, training writes the classification recipe's checkpoints (training/ml/checkpoints.py:
trainable tensors, AdamW state, the random state, the position in the data) on its schedule (every `save_steps`,
else each epoch, and where a cancel stops it), keeping the two newest; `setup()` resumes from the newest one in
`resume_from`, and the resumed run sees the same batches and random numbers as an uninterrupted one. `explain()`
attributes each predicted span to the words of the text (training/ml/explain.py).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    get_constant_schedule,
)

from annotation.imports.span_formats import tags_for
from annotation.tasktypes import word_tokens
from training.ml.checkpoints import (
    KEEP_CHECKPOINTS,
    TrainState,
    checkpoint_due,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from training.ml.explain import IG_MAX_STEPS, IG_STEPS, explain_spans
from training.ml.metrics import bootstrap, bootstrap_intervals, percentile_interval
from training.ml.modeling import trainable_parameters
from training.ml.token_labels import IGNORE, OUTSIDE, spans_from_token_tags, tag_names, tags_for_offsets, word_starts

RUN_FILE = "span_run.json"
NO_TRAIN_ROWS = "The train split has no items with text: nothing to learn from."
NO_LABELS = "A span model needs at least one label."


@dataclass(frozen=True)
class SpanTrainingConfig:
    """How a span model is trained; stored beside the adapter so it can be rebuilt."""

    base_model_dir: str
    labels: tuple[str, ...]
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    learning_rate: float = 2e-3
    epochs: int = 5
    batch_size: int = 16
    max_length: int = 128
    seed: int = 0
    target_modules: tuple[str, ...] | None = None
    save_steps: int = 0

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError(NO_LABELS)

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must have been trained with to be resumed (as JSON gives it back). The base model's
        folder is left out: the same model may sit at another path on the worker that resumes; the checkpoint's
        set of trainable tensors still has to match."""
        settings = {key: value for key, value in asdict(self).items() if key != "base_model_dir"}
        loaded: dict[str, Any] = json.loads(json.dumps(settings))
        return loaded


@dataclass
class SpanOutcome:
    steps: int
    losses: list[float] = field(default_factory=list)
    total_steps: int = 0
    epoch: float = 0.0
    cancelled: bool = False


def _rows_text(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [row for row in rows if isinstance(row.get("text"), str) and row["text"].strip()]


class SpanRecipe:
    def __init__(
        self,
        config: SpanTrainingConfig,
        *,
        on_step: Callable[[int, float], None] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        checkpoint_dir: Path | None = None,
        resume_from: Path | None = None,
        keep_checkpoints: int = KEEP_CHECKPOINTS,
    ) -> None:
        self.config = config
        self.tags = tag_names(config.labels)
        self.tag_id = {tag: i for i, tag in enumerate(self.tags)}
        self.on_step = on_step
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.resume_from = Path(resume_from) if resume_from is not None else self.checkpoint_dir
        self.keep_checkpoints = keep_checkpoints
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.model: Any = None
        self.state = TrainState()
        self.resumed_from: Path | None = None
        self._saved_step: int | None = None

    # --- setup ---------------------------------------------------------------------------------

    def setup(self) -> None:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.base_model_dir, local_files_only=True)
        base = AutoModelForTokenClassification.from_pretrained(
            cfg.base_model_dir,
            local_files_only=True,
            num_labels=len(self.tags),
            id2label=dict(enumerate(self.tags)),
            label2id=self.tag_id,
        )
        lora = LoraConfig(
            task_type=TaskType.TOKEN_CLS,
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.target_modules) if cfg.target_modules else None,
        )
        self.model = get_peft_model(base, lora)
        self.params = trainable_parameters(self.model)
        self.optimizer = torch.optim.AdamW(list(self.params.values()), lr=cfg.learning_rate)
        self.scheduler = get_constant_schedule(self.optimizer)
        self._resume()

    def _resume(self) -> None:
        """Continue from the newest checkpoint in `resume_from` (default: `checkpoint_dir`, so a job delivered
        twice continues rather than restarts): weights, optimizer, random state and the position in the data."""
        self.resumed_from = latest_checkpoint(self.resume_from) if self.resume_from is not None else None
        if self.resumed_from is None:
            return
        self.state = load_checkpoint(
            self.resumed_from,
            spec=self.config.identity(),
            params=self.params,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
        )
        if self.resume_from == self.checkpoint_dir:
            self._saved_step = self.state.step

    def _encode(self, texts: Sequence[str]) -> Any:
        assert self.tokenizer is not None
        return self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.config.max_length,
            padding=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )

    def _labels(self, encoding: Any, rows: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        out = torch.full(encoding["input_ids"].shape, IGNORE, dtype=torch.long)
        for i, row in enumerate(rows):
            offsets = [tuple(o) for o in encoding["offset_mapping"][i].tolist()]
            tags = tags_for_offsets(row.get("spans", []), offsets)
            starts = word_starts(encoding.word_ids(i))
            for j, (tag, first) in enumerate(zip(tags, starts, strict=True)):
                if tag is not None and first and tag in self.tag_id:
                    out[i, j] = self.tag_id[tag]
        return out

    # --- train ---------------------------------------------------------------------------------

    def total_steps(self, rows: int) -> int:
        return self.config.epochs * math.ceil(rows / self.config.batch_size)

    def _epoch_order(self, rows: int, epoch: int) -> list[int]:
        """The row order of `epoch`: the seeded generator shuffled once per epoch from the first, so an epoch's
        order depends on (seed, epoch) alone and a resumed run replays it without any saved state."""
        order = list(range(rows))
        rng = random.Random(self.config.seed)
        for _ in range(epoch + 1):
            rng.shuffle(order)
        return order

    def train(self, rows: Sequence[Mapping[str, Any]]) -> SpanOutcome:
        """Train on `rows`, from the checkpoint `setup()` resumed from (if any) to the last epoch; `should_stop` is
        asked before every step, and a stop keeps what was learnt so far (`outcome.cancelled`). With a
        `checkpoint_dir`, a checkpoint is written on the Recipe's schedule (every `save_steps`, else each epoch) and
        where training stops. `on_progress` gets the runner's figures after every step: step, total_steps, epoch,
        train_loss, lr (constant), elapsed_s, eta_s."""
        rows = _rows_text(rows)
        if not rows:
            raise ValueError(NO_TRAIN_ROWS)
        cfg, state, model = self.config, self.state, self.model
        model.train()
        per_epoch = math.ceil(len(rows) / cfg.batch_size)
        outcome = SpanOutcome(steps=state.step, total_steps=self.total_steps(len(rows)), epoch=state.step / per_epoch)
        started, session_steps = time.monotonic(), 0
        while state.epoch < cfg.epochs:
            order = self._epoch_order(len(rows), state.epoch)
            batches = [order[at : at + cfg.batch_size] for at in range(0, len(order), cfg.batch_size)]
            for index in range(state.step_in_epoch, len(batches)):
                if self.should_stop is not None and self.should_stop():
                    outcome.cancelled = True
                    return self._finish(outcome)
                epoch = state.epoch
                loss = self._step([rows[i] for i in batches[index]])
                state.step += 1
                state.step_in_epoch = index + 1
                last_in_epoch = index + 1 == len(batches)
                if last_in_epoch:
                    state.epoch, state.step_in_epoch = epoch + 1, 0
                session_steps += 1
                outcome.steps = state.step
                outcome.losses.append(loss)
                outcome.epoch = state.step / per_epoch
                self._report(outcome, epoch + (index + 1) / len(batches), started, session_steps)
                if self.checkpoint_dir is not None and checkpoint_due(
                    state.step, every=cfg.save_steps, total_steps=outcome.total_steps, last_in_epoch=last_in_epoch
                ):
                    self._checkpoint()
        return self._finish(outcome)

    def _step(self, batch: Sequence[Mapping[str, Any]]) -> float:
        encoding = self._encode([r["text"] for r in batch])
        labels = self._labels(encoding, batch)
        inputs = {k: v for k, v in encoding.items() if k != "offset_mapping"}
        loss = self.model(**inputs, labels=labels).loss
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        return float(loss.detach())

    def _report(self, outcome: SpanOutcome, epoch: float, started: float, session_steps: int) -> None:
        if self.on_step is not None:
            self.on_step(outcome.steps, outcome.losses[-1])
        if self.on_progress is not None:
            elapsed = time.monotonic() - started
            self.on_progress(
                {
                    "step": outcome.steps,
                    "total_steps": outcome.total_steps,
                    "epoch": round(epoch, 3),
                    "train_loss": outcome.losses[-1],
                    "lr": self.config.learning_rate,
                    "elapsed_s": elapsed,
                    "eta_s": elapsed / session_steps * (outcome.total_steps - outcome.steps),
                }
            )

    def _checkpoint(self) -> None:
        assert self.checkpoint_dir is not None
        self._saved_step = self.state.step
        save_checkpoint(
            self.checkpoint_dir,
            state=self.state,
            spec=self.config.identity(),
            params=self.params,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            keep=self.keep_checkpoints,
        )

    def _finish(self, outcome: SpanOutcome) -> SpanOutcome:
        """Checkpoint where training stopped (unless that step is saved already), as the Recipe does."""
        if self.checkpoint_dir is not None and self.state.step and self._saved_step != self.state.step:
            self._checkpoint()
        self.model.eval()
        return outcome

    # --- predict -------------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, texts: Sequence[str], *, batch_size: int = 32) -> list[dict[str, Any]]:
        """Per text: {"spans": [...], "confidence": mean probability of its entity tokens' tags (1.0 without),
        "uncertainty": 1 - the probability of its least sure word's tag (0.0 without words)}. The uncertainty reads
        every word, O-tagged ones too, so a text whose entities the model may have missed ranks as unsure."""
        self.model.eval()
        out: list[dict[str, Any]] = []
        for at in range(0, len(texts), batch_size):
            chunk = list(texts[at : at + batch_size])
            encoding = self._encode(chunk)
            inputs = {k: v for k, v in encoding.items() if k != "offset_mapping"}
            probs = torch.softmax(self.model(**inputs).logits.float(), dim=-1)
            best = probs.argmax(dim=-1)
            for i, text in enumerate(chunk):
                offsets = [tuple(o) for o in encoding["offset_mapping"][i].tolist()]
                starts = word_starts(encoding.word_ids(i))
                tags: list[str | None] = []
                kept: list[float] = []
                least = 1.0
                for j, first in enumerate(starts):
                    if not first:
                        tags.append(None)
                        continue
                    tag = self.tags[int(best[i, j])]
                    tags.append(tag)
                    least = min(least, float(probs[i, j, best[i, j]]))
                    if tag != OUTSIDE:
                        kept.append(float(probs[i, j, best[i, j]]))
                spans = spans_from_token_tags(tags, offsets, text)
                confidence = sum(kept) / len(kept) if kept else 1.0
                out.append({"spans": spans, "confidence": confidence, "uncertainty": 1.0 - least})
        return out

    def explain(self, text: str, *, steps: int = IG_STEPS, max_steps: int = IG_MAX_STEPS) -> dict[str, Any]:
        """Why each span of `text` was found: word attributions per predicted span (training/ml/explain.py)."""
        assert self.tokenizer is not None
        return explain_spans(
            self.model,
            self.tokenizer,
            text,
            tag_names=self.tags,
            max_length=self.config.max_length,
            device=next(self.model.parameters()).device,
            steps=steps,
            max_steps=max_steps,
        )

    # --- evaluate ------------------------------------------------------------------------------

    def evaluate(self, rows: Sequence[Mapping[str, Any]], *, train_rows: Sequence[Mapping[str, Any]] = ()) -> dict:
        """Entity-level precision, recall and F1 of the model, and of the gazetteer baseline when `train_rows`
        are given, on `rows` (each with "text" and the gold "spans")."""
        rows = _rows_text(rows)
        predicted = [p["spans"] for p in self.predict([r["text"] for r in rows])]
        report = entity_scores(rows, predicted)
        report["intervals"] = entity_intervals(rows, predicted)
        if train_rows:
            gazetteer = Gazetteer.from_rows(train_rows)
            guessed = [gazetteer.spans(r["text"]) for r in rows]
            baseline = entity_scores(rows, guessed)
            baseline["intervals"] = entity_intervals(rows, guessed)
            baseline["method"] = (
                f"the train split's {len(gazetteer.entries)} entity strings, matched longest first on word boundaries"
            )
            report["baselines"] = {"gazetteer": baseline}
            report["comparison"] = {
                "baseline": "gazetteer",
                "f1_delta": None if report["f1"] is None or baseline["f1"] is None else report["f1"] - baseline["f1"],
                **f1_difference(rows, predicted, guessed),
            }
        return report

    # --- save / load ---------------------------------------------------------------------------

    def save(self, directory: Path, *, metrics: Mapping[str, Any] | None = None) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        assert self.tokenizer is not None
        self.tokenizer.save_pretrained(directory)
        info = {"config": asdict(self.config), "tags": self.tags, "metrics": dict(metrics or {})}
        (directory / RUN_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: Path) -> SpanRecipe:
        info = json.loads((directory / RUN_FILE).read_text())
        raw = info["config"]
        raw["labels"] = tuple(raw["labels"])
        if raw.get("target_modules") is not None:
            raw["target_modules"] = tuple(raw["target_modules"])
        recipe = cls(SpanTrainingConfig(**raw))
        recipe.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        base = AutoModelForTokenClassification.from_pretrained(
            recipe.config.base_model_dir,
            local_files_only=True,
            num_labels=len(recipe.tags),
            id2label=dict(enumerate(recipe.tags)),
            label2id=recipe.tag_id,
        )
        recipe.model = PeftModel.from_pretrained(base, directory)
        recipe.model.eval()
        return recipe


# --- metrics and the baseline --------------------------------------------------------------------


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def entity_scores(rows: Sequence[Mapping[str, Any]], predicted: Sequence[Sequence[Mapping[str, Any]]]) -> dict:
    """seqeval's entity-level micro precision/recall/F1 and per label, on the texts' word tokens."""
    gold_tags: list[list[str]] = []
    pred_tags: list[list[str]] = []
    for row, spans in zip(rows, predicted, strict=True):
        tokens = word_tokens(row["text"])
        gold_tags.append(tags_for(row["text"], row.get("spans", []), tokens))
        pred_tags.append(tags_for(row["text"], spans, tokens))
    n_gold = sum(tag.startswith("B-") for tags in gold_tags for tag in tags)
    if not gold_tags:
        return {"n": 0, "entities": 0, "precision": None, "recall": None, "f1": None, "per_label": {}}
    table = classification_report(gold_tags, pred_tags, output_dict=True, zero_division=0)
    per_label = {
        name: {k: _finite(v) if k != "support" else int(v) for k, v in figures.items()}
        for name, figures in table.items()
        if not name.endswith(" avg")
    }
    return {
        "n": len(rows),
        "entities": n_gold,
        "precision": _finite(precision_score(gold_tags, pred_tags, zero_division=0)),
        "recall": _finite(recall_score(gold_tags, pred_tags, zero_division=0)),
        "f1": _finite(f1_score(gold_tags, pred_tags, zero_division=0)),
        "per_label": per_label,
    }


def _entity_counts(
    rows: Sequence[Mapping[str, Any]], predicted: Sequence[Sequence[Mapping[str, Any]]]
) -> np.ndarray:
    """Per text: [entities found exactly (type and extent), gold entities, predicted entities], as seqeval
    counts them on word tokens: the micro figures are sums of these, so texts can be resampled."""
    counts = np.zeros((len(rows), 3))
    for i, (row, spans) in enumerate(zip(rows, predicted, strict=True)):
        tokens = word_tokens(row["text"])
        gold = set(get_entities(tags_for(row["text"], row.get("spans", []), tokens)))
        guess = set(get_entities(tags_for(row["text"], spans, tokens)))
        counts[i] = (len(gold & guess), len(gold), len(guess))
    return counts


def _micro(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 of each resample's summed counts (0 where undefined, as seqeval's zero_division=0)."""
    hit, gold, guess = counts[..., 0], counts[..., 1], counts[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(guess > 0, hit / guess, 0.0)
        recall = np.where(gold > 0, hit / gold, 0.0)
        f1 = np.where(gold + guess > 0, 2 * hit / (gold + guess), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1}


def entity_intervals(
    rows: Sequence[Mapping[str, Any]], predicted: Sequence[Sequence[Mapping[str, Any]]]
) -> dict[str, list[float]]:
    """95% bootstrap intervals of entity precision, recall and F1, resampling texts (the unit that was drawn)."""
    counts = _entity_counts(rows, predicted)
    statistics = {name: (lambda w, name=name: _micro(w @ counts)[name]) for name in ("precision", "recall", "f1")}
    return bootstrap_intervals(statistics, len(rows))


def f1_difference(
    rows: Sequence[Mapping[str, Any]],
    predicted: Sequence[Sequence[Mapping[str, Any]]],
    baseline: Sequence[Sequence[Mapping[str, Any]]],
) -> dict[str, Any]:
    """The model's F1 minus the baseline's over the same resamples of texts (paired), with its 95% interval and
    a verdict: better only when the whole interval is above 0."""
    if not rows:
        return {}
    model, other = _entity_counts(rows, predicted), _entity_counts(rows, baseline)
    drawn = bootstrap({"d": lambda w: _micro(w @ model)["f1"] - _micro(w @ other)["f1"]}, len(rows))["d"]
    low, high = percentile_interval(drawn)
    if low > 0:
        verdict, message = "better", "Entity F1 is above the gazetteer's (95% interval of the difference above 0)."
    elif high < 0:
        verdict, message = "not_better", "Entity F1 is below the gazetteer's: the model does not beat a name list."
    else:
        verdict = "too_small_to_tell"
        message = "The test split is too small to tell the model from the gazetteer (the interval spans 0)."
    return {"f1_delta_interval": [low, high], "verdict": verdict, "message": message}


class Gazetteer:
    """Entity strings of the train split → label (the most frequent label of each string), matched longest
    first on word boundaries, never overlapping."""

    def __init__(self, entries: Mapping[str, str]) -> None:
        self.entries = dict(entries)
        self.longest = max((len(word_tokens(s)) for s in self.entries), default=0)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> Gazetteer:
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            for span in row.get("spans", []):
                piece = row["text"][span["start"] : span["end"]]
                counts.setdefault(piece, {}).setdefault(span["label"], 0)
                counts[piece][span["label"]] += 1
        return cls({piece: max(labels, key=lambda k: labels[k]) for piece, labels in counts.items()})

    def spans(self, text: str) -> list[dict[str, Any]]:
        tokens = word_tokens(text)
        out: list[dict[str, Any]] = []
        i = 0
        while i < len(tokens):
            for n in range(min(self.longest, len(tokens) - i), 0, -1):
                start, end = tokens[i][0], tokens[i + n - 1][1]
                label = self.entries.get(text[start:end])
                if label is not None:
                    out.append({"start": start, "end": end, "label": label})
                    i += n
                    break
            else:
                i += 1
        return out
