"""The fine-tuning recipe: `setup → train → evaluate → save` over one frozen TrainingSpec.

A plain torch loop: AdamW, a transformers scheduler, gradient accumulation, gradient clipping, bf16 autocast on
CUDA, causal-LM micro-batches packed into one row without padding (when the model keeps packed examples apart),
class-weighted cross-entropy when the spec asks for it, the distillation loss when a teacher's logits are given
(training/ml/distill.py: soft labels on the train rows and on unlabelled texts), validation every `eval_steps`
(or each epoch) with early stopping on the spec's metric and the best weights kept, and a checkpoint every
`save_steps` (or each epoch). The caller — an RQ job, a benchmark, a test — talks to it through three callables:

    should_stop() -> bool     checked before every optimizer step; True saves a checkpoint and returns "cancelled"
    on_progress(dict)         after every optimizer step: step, total_steps, epoch, lr, train_loss, grad_norm,
                              samples_per_s, elapsed_s, eta_s (throttle database writes on the caller's side)
    on_eval(dict)             after every validation: the metrics plus step and epoch

`setup()` resumes from the newest checkpoint in `resume_from` (default: `checkpoint_dir`, so a job delivered
twice continues rather than restarts). Resumed training follows the same batches, learning rates and random
numbers as an uninterrupted one.

Several GPUs: launch one process per GPU and the same code runs data-parallel (DistributedDataParallel): each
process takes its share of every epoch's batches, rank 0 alone validates, checkpoints and saves, and a cancel
or early stop reaches every process at the same step. See `training/ml/launch.py` and docs/training.md:

    torchrun --nproc_per_node 4 -m training.ml.launch --spec spec.json --data rows.jsonl --out runs/7
    accelerate launch --num_processes 4 -m training.ml.launch --spec spec.json --data rows.jsonl --out runs/7
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from transformers import get_scheduler

from training.ml import artifacts
from training.ml.checkpoints import (
    BEST_DIR,
    KEEP_CHECKPOINTS,
    TRAINABLE_FILE,
    TrainState,
    checkpoint_due,
    latest_checkpoint,
    load_checkpoint,
    load_trainable,
    save_checkpoint,
    save_trainable,
)
from training.ml.data import (
    IGNORE_INDEX,
    DataError,
    Example,
    encode_causal_lm,
    encode_classification,
    examples_from_rows,
    length_grouped_batches,
    make_collator,
    pack_causal_lm,
    shard_batches,
)
from training.ml.distill import TeacherTargets, distillation_loss
from training.ml.evaluation import (
    Scored,
    causal_lm_loss,
    classification_evaluation_items,
    classification_report,
    classification_test_report,
    classification_validation_slices,
    generation_evaluation_items,
    generation_scored,
    generation_test_report,
)
from training.ml.metrics import perplexity
from training.ml.modeling import (
    build_model,
    load_base_model,
    load_tokenizer,
    packing_isolates_sequences,
    store_frozen_matmul_weights_in_bf16,
    trainable_parameters,
)
from training.ml.progress import BatchCallback
from training.ml.registry import ModelRegistry
from training.ml.runtime import Runtime, runtime_start
from training.spec import LOWER_IS_BETTER, METHOD_FULL, TASK_CLASSIFICATION, TrainingSpec

STATUS_COMPLETED = "completed"
STATUS_EARLY_STOPPED = "early_stopped"
STATUS_CANCELLED = "cancelled"

EVAL_BATCH_FACTOR = 2
SCHEDULER_NAMES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
NO_DECAY_MARKERS = ("bias", "norm")

ERROR_NOT_SET_UP = "call setup() before {method}()"
ERROR_NO_EXAMPLES = "no {split} examples"
ERROR_LABELS = "labels must be distinct, non-empty texts"
ERROR_DISTIL_TASK = "knowledge distillation applies to classification only"
ERROR_CLASS_WEIGHT_LABEL = "class_weights: {label!r} is not one of the run's labels ({labels})"

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Outcome:
    """How `train()` ended: completed, early_stopped or cancelled, and where."""

    status: str
    step: int
    total_steps: int
    epoch: float
    best_metric: float | None
    best_step: int | None


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy, class-weighted when weights are given: sum(w[y] * loss) / sum(w[y]) over the batch."""
    return F.cross_entropy(logits.float(), labels, weight=weights)


def packed_causal_lm_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the response tokens of a packed micro-batch (see data.pack_causal_lm).

    The same value as the padded batch's `model(...).loss`, for less work: no padding tokens, and the vocabulary
    projection (the largest matrix of a small LM, and a float32 softmax over the whole vocabulary) only at the
    positions that are learnt; prompt positions skip it.
    """
    targets = batch["targets"]
    keep = targets != IGNORE_INDEX
    logits = model(
        input_ids=batch["input_ids"], position_ids=batch["position_ids"], logits_to_keep=keep, use_cache=False
    ).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets[keep])


class Recipe:
    """One fine-tuning run. Construct, `setup()`, `train()`, `evaluate(test_rows)`, `save(artifact_dir, ...)`."""

    def __init__(
        self,
        spec: TrainingSpec,
        *,
        train: Sequence[Mapping[str, Any]],
        validation: Sequence[Mapping[str, Any]] = (),
        labels: Sequence[str] | None = None,
        checkpoint_dir: Path,
        resume_from: Path | None = None,
        registry: ModelRegistry | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_progress: ProgressCallback | None = None,
        on_eval: ProgressCallback | None = None,
        keep_checkpoints: int = KEEP_CHECKPOINTS,
        teacher: TeacherTargets | None = None,
    ) -> None:
        self.spec = spec.validate()
        if teacher is not None and self.spec.task != TASK_CLASSIFICATION:
            raise DataError(ERROR_DISTIL_TASK)
        self._teacher = teacher
        self._train_rows = train
        self._validation_rows = validation
        self._labels = list(labels) if labels is not None else None
        self.checkpoint_dir = Path(checkpoint_dir)
        self.resume_from = Path(resume_from) if resume_from is not None else self.checkpoint_dir
        self.registry = registry or ModelRegistry()
        self._should_stop = should_stop or (lambda: False)
        self._on_progress = on_progress
        self._on_eval = on_eval
        self._keep = keep_checkpoints
        self._ready = False

    # --- setup ------------------------------------------------------------------------------------

    def setup(self) -> None:
        """Load model and data, build optimizer and scheduler, and resume from the newest checkpoint."""
        spec = self.spec
        # On a CPU that multiplies bf16 in hardware, bf16 pays for the causal LM's large products (a probe on a loaded
        # machine: a packed 400-token SmolLM2 step 31 s in float32, 20 s under autocast, 13 s with the frozen weights
        # held in bf16) but not for a small encoder on short texts (MiniLM at 40 tokens: 0.18 s against 0.135 s in
        # float32); docs/benchmarks.md.
        self.runtime: Runtime = runtime_start(spec.bf16, cpu_bf16=spec.task != TASK_CLASSIFICATION)
        random.seed(spec.seed)
        np.random.seed(spec.seed)
        torch.manual_seed(spec.seed)
        self.model_dir = self.registry.resolve(spec.base_model)
        self.tokenizer = load_tokenizer(self.model_dir, task=spec.task)

        self.train_examples = self._examples(self._train_rows, "train", required=True)
        self.validation_examples = self._examples(self._validation_rows, "validation", required=False)
        self.labels: list[str] = []
        self.class_weights: torch.Tensor | None = None
        if spec.task == TASK_CLASSIFICATION:
            self.labels = self._labels or sorted({example.target for example in self.train_examples})
            if len(set(self.labels)) != len(self.labels) or not all(isinstance(x, str) and x for x in self.labels):
                raise DataError(ERROR_LABELS)
            self.class_weights = self._class_weight_tensor()
        self.label2id = {label: index for index, label in enumerate(self.labels)}
        self.train_features = self._encode(self.train_examples, "train")
        # What the optimizer steps over: the train rows, then (distilling) the unlabelled texts, which carry a
        # placeholder label that the loss never reads (`_labelled` is False for them).
        self.fit_examples: list[Example] = list(self.train_examples)
        self._teacher_logits: torch.Tensor | None = None
        self._labelled: torch.Tensor | None = None
        if self._teacher is not None:
            self._add_teacher_targets(self._teacher)
        self.validation_features = self._encode(self.validation_examples, "validation")
        self.collator = make_collator(
            self.tokenizer, task=spec.task, pad_to_multiple_of=8 if self.runtime.device.type == "cuda" else None
        )

        model = build_model(
            spec, self.model_dir, label2id=self.label2id or None, pad_token_id=self.tokenizer.pad_token_id
        )
        self.model: nn.Module = model.to(self.runtime.device)
        # A causal LM trains on packed micro-batches when the model provably keeps packed examples apart.
        self.packed = spec.task != TASK_CLASSIFICATION and packing_isolates_sequences(self.model)
        # While training on the CPU in bf16, the frozen weights are held as autocast rounds them anyway; `_finish`
        # puts the float32 originals back. (On CUDA autocast's cast is cheap next to the step; not measured.)
        self._restore_weights: Callable[[], None] = lambda: None
        if self.runtime.bf16 and self.runtime.device.type == "cpu" and spec.method != METHOD_FULL:
            self._restore_weights = store_frozen_matmul_weights_in_bf16(self.model)
        self.params = trainable_parameters(self.model)
        self.optimizer = torch.optim.AdamW(self._parameter_groups(), lr=spec.learning_rate)
        self.steps_per_epoch = math.ceil(len(self._epoch_batches(0)) / spec.grad_accum)
        self.total_steps = self.steps_per_epoch * spec.epochs
        self.scheduler = get_scheduler(
            SCHEDULER_NAMES[spec.lr_scheduler],
            self.optimizer,
            num_warmup_steps=math.ceil(spec.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )
        self._train_model: nn.Module = self.model
        if self.runtime.distributed:
            device_ids = [self.runtime.local_rank] if self.runtime.device.type == "cuda" else None
            self._train_model = DistributedDataParallel(self.model, device_ids=device_ids)
        self.state = TrainState()
        # Decided from memory, never from the folder, so every process agrees without a race on the file system.
        self._saved_step: int | None = None
        self.resumed_from: Path | None = latest_checkpoint(self.resume_from)
        if self.resumed_from is not None:
            self.state = load_checkpoint(
                self.resumed_from,
                spec=spec.to_dict(),
                params=self.params,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
            )
            self._adopt_best_weights()
            if self.resume_from == self.checkpoint_dir:
                self._saved_step = self.state.step
        self._ready = True

    def _add_teacher_targets(self, teacher: TeacherTargets) -> None:
        try:
            teacher.check(train_rows=len(self.train_examples), labels=len(self.labels))
        except ValueError as error:
            raise DataError(str(error)) from error
        unlabelled = [Example(source=text, target=self.labels[0]) for text in teacher.unlabelled_texts]
        self.fit_examples += unlabelled
        self.train_features = self.train_features + self._encode(unlabelled, "unlabelled")
        logits = np.concatenate([teacher.train_logits, teacher.unlabelled_logits.reshape(-1, len(self.labels))])
        self._teacher_logits = torch.tensor(logits, dtype=torch.float32)
        self._labelled = torch.tensor([True] * len(self.train_examples) + [False] * len(unlabelled))

    def _examples(self, rows: Sequence[Mapping[str, Any]], split: str, *, required: bool) -> list[Example]:
        try:
            examples = examples_from_rows(rows, task=self.spec.task)
        except DataError as error:
            raise DataError(f"{split} {error}") from error
        if required and not examples:
            raise DataError(ERROR_NO_EXAMPLES.format(split=split))
        return examples

    def _encode(self, examples: Sequence[Example], split: str) -> list[dict[str, Any]]:
        try:
            if self.spec.task == TASK_CLASSIFICATION:
                return encode_classification(
                    examples, self.tokenizer, label2id=self.label2id, max_length=self.spec.max_length
                )
            return encode_causal_lm(examples, self.tokenizer, max_length=self.spec.max_length)
        except DataError as error:
            raise DataError(f"{split} {error}") from error

    def _class_weight_tensor(self) -> torch.Tensor | None:
        if not self.spec.class_weights:
            return None
        unknown = [label for label in self.spec.class_weights if label not in self.labels]
        if unknown:
            raise DataError(ERROR_CLASS_WEIGHT_LABEL.format(label=unknown[0], labels=", ".join(self.labels)))
        weights = [float(self.spec.class_weights.get(label, 1.0)) for label in self.labels]
        return torch.tensor(weights, device=self.runtime.device)

    def _parameter_groups(self) -> list[dict[str, Any]]:
        """Weight decay on matrices only: biases and norm weights are not decayed."""
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for name, param in self.params.items():
            (no_decay if any(m in name.lower() for m in NO_DECAY_MARKERS) else decay).append(param)
        return [
            {"params": decay, "weight_decay": self.spec.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    def _adopt_best_weights(self) -> None:
        """A run resumed from another run's checkpoints takes over that run's best weights too."""
        source = self.resume_from / BEST_DIR / TRAINABLE_FILE
        target = self.checkpoint_dir / BEST_DIR / TRAINABLE_FILE
        if self.runtime.is_main and source.is_file() and source.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        self.runtime.barrier()

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        spec = self.spec
        batches = length_grouped_batches(
            [len(feature["input_ids"]) for feature in self.train_features],
            batch_size=spec.batch_size,
            seed=spec.seed,
            epoch=epoch,
            agreement=[e.agreement for e in self.fit_examples] if spec.curriculum == "agreement" else None,
        )
        return shard_batches(batches, rank=self.runtime.rank, world_size=self.runtime.world_size)

    # --- train ------------------------------------------------------------------------------------

    def train(self) -> Outcome:
        """Train to the end, to an early stop, or to a cancel; the model then holds the best weights seen."""
        self._require_setup("train")
        spec, state = self.spec, self.state
        started, session_steps, session_samples = time.monotonic(), 0, 0.0
        self._train_model.train()
        while state.epoch < spec.epochs:
            batches = self._epoch_batches(state.epoch)
            groups = [batches[i : i + spec.grad_accum] for i in range(0, len(batches), spec.grad_accum)]
            for index in range(state.step_in_epoch, len(groups)):
                if self.runtime.any(self.runtime.is_main and bool(self._should_stop())):
                    return self._finish(STATUS_CANCELLED)
                epoch = state.epoch
                loss, grad_norm, samples = self._optimizer_step(groups[index])
                state.step += 1
                state.step_in_epoch = index + 1
                last_in_epoch = index + 1 == len(groups)
                if last_in_epoch:
                    state.epoch, state.step_in_epoch = epoch + 1, 0
                session_steps += 1
                session_samples += samples
                elapsed = time.monotonic() - started
                self._progress(
                    step=state.step,
                    total_steps=self.total_steps,
                    epoch=epoch + (index + 1) / len(groups),
                    lr=self.scheduler.get_last_lr()[0],
                    train_loss=loss,
                    grad_norm=grad_norm,
                    samples_per_s=session_samples / elapsed if elapsed > 0 else 0.0,
                    elapsed_s=elapsed,
                    eta_s=elapsed / session_steps * (self.total_steps - state.step),
                )
                if self._due(spec.eval_steps, last_in_epoch) and self.validation_features and self._validate():
                    return self._finish(STATUS_EARLY_STOPPED)
                if self._due(spec.save_steps, last_in_epoch):
                    self._checkpoint()
        return self._finish(STATUS_COMPLETED)

    def _due(self, every: int, last_in_epoch: bool) -> bool:
        return checkpoint_due(self.state.step, every=every, total_steps=self.total_steps, last_in_epoch=last_in_epoch)

    def _optimizer_step(self, group: Sequence[Sequence[int]]) -> tuple[float, float, float]:
        """Accumulate gradients over the micro-batches of `group`, then one clipped AdamW step.

        Returns the mean loss, the gradient norm before clipping and the samples seen, over all processes.
        """
        model, runtime = self._train_model, self.runtime
        total_loss, samples = 0.0, 0
        for position, indices in enumerate(group):
            batch = self._batch(indices)
            final = position == len(group) - 1
            # Gradients are averaged across processes once per optimizer step, on its last micro-batch only
            # (the model is wrapped in DistributedDataParallel exactly when the run is distributed).
            sync: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
            if isinstance(model, DistributedDataParallel) and not final:
                sync = model.no_sync()
            with sync:
                with runtime.autocast():
                    loss = self._loss(model, dict(batch))
                (loss / len(group)).backward()
            total_loss += loss.item()
            samples += len(indices)
        grad_norm = torch.nn.utils.clip_grad_norm_(list(self.params.values()), self.spec.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        mean_loss = runtime.mean(total_loss / len(group))
        return mean_loss, float(grad_norm), runtime.mean(float(samples)) * runtime.world_size

    def _batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        features = [self.train_features[i] for i in indices]
        batch = pack_causal_lm(features) if self.packed else self.collator(features)
        if self._teacher_logits is not None and self._labelled is not None:
            rows = torch.tensor(list(indices))
            batch = {**batch, "teacher_logits": self._teacher_logits[rows], "labelled": self._labelled[rows]}
        return {key: value.to(self.runtime.device) for key, value in batch.items()}

    def _loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.packed:
            return packed_causal_lm_loss(model, batch)
        if self.spec.task != TASK_CLASSIFICATION:
            return model(**batch).loss
        labels = batch.pop("labels")
        if self._teacher_logits is not None:
            teacher, labelled = batch.pop("teacher_logits"), batch.pop("labelled")
            return distillation_loss(
                model(**batch).logits,
                teacher,
                labels,
                labelled,
                temperature=self.spec.distill_temperature,
                alpha=self.spec.distill_alpha,
                class_weights=self.class_weights,
            )
        return classification_loss(model(**batch).logits, labels, self.class_weights)

    def _progress(self, **figures: Any) -> None:
        if self._on_progress is not None and self.runtime.is_main:
            self._on_progress(figures)

    def _validate(self) -> bool:
        """Evaluate on the validation split (rank 0), keep the best weights; True when patience has run out."""
        spec, state = self.spec, self.state
        patience_spent = False
        if self.runtime.is_main:
            metrics = self._validation_metrics()
            value = float(metrics[spec.early_stopping_metric])
            lower = spec.early_stopping_metric in LOWER_IS_BETTER
            best = state.best_metric
            if best is None or (value < best if lower else value > best):
                state.best_metric, state.best_step, state.evals_without_improvement = value, state.step, 0
                save_trainable(self.checkpoint_dir / BEST_DIR / TRAINABLE_FILE, self.params)
            else:
                state.evals_without_improvement += 1
            if self._on_eval is not None:
                self._on_eval({**metrics, "step": state.step, "epoch": state.step / self.steps_per_epoch})
            patience = spec.early_stopping_patience
            patience_spent = bool(patience) and state.evals_without_improvement >= patience
        self._train_model.train()
        return self.runtime.any(patience_spent)

    def _validation_metrics(self) -> dict[str, Any]:
        batch_size = self.spec.batch_size * EVAL_BATCH_FACTOR
        if self.spec.task == TASK_CLASSIFICATION:
            return self._classification_report(self.model, self.validation_examples)
        loss = causal_lm_loss(
            self.model,
            self.tokenizer,
            self.validation_features,
            batch_size=batch_size,
            device=self.runtime.device,
            bf16=self.runtime.bf16,
        )
        return {"n": len(self.validation_features), "loss": loss, "perplexity": perplexity(loss)}

    def _checkpoint(self) -> None:
        self._saved_step = self.state.step
        if self.runtime.is_main:
            save_checkpoint(
                self.checkpoint_dir,
                state=self.state,
                spec=self.spec.to_dict(),
                params=self.params,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                keep=self._keep,
            )
        self.runtime.barrier()

    def _finish(self, status: str) -> Outcome:
        """Checkpoint where training stopped (unless that step is saved already), then load the best weights."""
        state = self.state
        self._restore_weights()
        if state.step and self._saved_step != state.step:
            self._checkpoint()
        best = self.checkpoint_dir / BEST_DIR / TRAINABLE_FILE
        if state.best_step is not None and best.is_file():
            load_trainable(best, self.params)
        self.model.eval()
        return Outcome(
            status=status,
            step=state.step,
            total_steps=self.total_steps,
            epoch=state.step / self.steps_per_epoch,
            best_metric=state.best_metric,
            best_step=state.best_step,
        )

    # --- evaluate ---------------------------------------------------------------------------------

    def evaluate(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        baselines: bool = False,
        label_descriptions: Mapping[str, str] | None = None,
        on_batch: BatchCallback | None = None,
        slice_groups: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    ) -> dict[str, Any]:
        """Test-split metrics of the trained model with 95% bootstrap intervals; with `baselines`, the figures it
        has to beat as well, and the paired comparison with the best of them (training/ml/evaluation.py).

        Classification baselines (training/ml/baselines.py) are fitted on the recipe's train rows and tuned on its
        validation rows, never on `rows`; `label_descriptions` (label → what the guidelines say about it) feed
        the zero-shot one. Generation baseline: the un-tuned base model. Run it on rank 0 only when distributed.
        `on_batch(n)` after every batch of n items, `evaluation_items` of them in all (training/ml/progress.py).
        `slice_groups` ("test" / "validation" → field → each row's slice, training/ml/slices.py) adds the figures
        per slice: "slices" on the test rows, "validation_slices" on the recipe's validation rows (classification).
        """
        self._require_setup("evaluate")
        examples = self._examples(rows, "test", required=True)
        self._encode(examples, "test")  # reports unknown labels with the split and row
        spec, device = self.spec, self.runtime.device
        slice_groups = slice_groups or {}
        if spec.task == TASK_CLASSIFICATION:
            metrics = classification_test_report(
                self.model,
                self.tokenizer,
                self.model_dir,
                train=self.train_examples,
                validation=self.validation_examples,
                test=examples,
                labels=self.labels,
                descriptions=label_descriptions or {},
                max_length=spec.max_length,
                batch_size=spec.batch_size * EVAL_BATCH_FACTOR,
                device=device,
                bf16=self.runtime.bf16,
                seed=spec.seed,
                baselines=baselines,
                on_batch=on_batch,
                slice_groups=slice_groups.get("test"),
            )
            validation_groups = slice_groups.get("validation")
            if validation_groups and self.validation_examples:
                metrics["validation_slices"] = classification_validation_slices(
                    self.model,
                    self.tokenizer,
                    self.validation_examples,
                    validation_groups,
                    labels=self.labels,
                    max_length=spec.max_length,
                    batch_size=spec.batch_size * EVAL_BATCH_FACTOR,
                    device=device,
                    bf16=self.runtime.bf16,
                )
            return metrics
        tuned = self._generation_report(self.model, examples, on_batch=on_batch)
        base_scored = None
        if baselines:
            base, _ = load_base_model(self.model_dir, task=spec.task)
            # transformers wraps PreTrainedModel.to with functools.wraps, and its hint loses the bound `self`.
            moved = base.to(device)  # type: ignore[arg-type]
            base_scored = self._generation_report(moved, examples, on_batch=on_batch)
        return generation_test_report(
            tuned, base_model=base_scored, n=len(examples), slice_groups=slice_groups.get("test")
        )

    def _classification_report(self, model: nn.Module, examples: Sequence[Example]) -> dict[str, Any]:
        return classification_report(
            model,
            self.tokenizer,
            examples,
            labels=self.labels,
            max_length=self.spec.max_length,
            batch_size=self.spec.batch_size * EVAL_BATCH_FACTOR,
            device=self.runtime.device,
            bf16=self.runtime.bf16,
        )

    def evaluation_items(self, test_rows: int, *, baselines: bool = False) -> int:
        """How many items `evaluate` reports through `on_batch` for `test_rows` test rows: its progress total."""
        if self.spec.task == TASK_CLASSIFICATION:
            return classification_evaluation_items(
                train=len(self.train_examples),
                validation=len(self.validation_examples),
                test=test_rows,
                baselines=baselines,
            )
        return generation_evaluation_items(test=test_rows, baselines=baselines)

    def _generation_report(
        self, model: nn.Module, examples: Sequence[Example], *, on_batch: BatchCallback | None = None
    ) -> Scored:
        return generation_scored(
            model,
            self.tokenizer,
            examples,
            max_length=self.spec.max_length,
            max_new_tokens=self.spec.max_new_tokens,
            batch_size=self.spec.batch_size * EVAL_BATCH_FACTOR,
            device=self.runtime.device,
            bf16=self.runtime.bf16,
            on_batch=on_batch,
        )

    # --- save -------------------------------------------------------------------------------------

    def save(
        self,
        artifact_dir: Path,
        *,
        snapshot_hash: str,
        metrics: Mapping[str, Any] | None = None,
        augmentation: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write the self-describing artifact (see artifacts.save_artifact); rank 0 only when distributed.

        `augmentation`: what the augmentation whose rows joined train was (hash, options, rows), or None."""
        self._require_setup("save")
        return artifacts.save_artifact(
            Path(artifact_dir),
            model=self.model,
            tokenizer=self.tokenizer,
            spec=self.spec,
            snapshot_hash=snapshot_hash,
            augmentation=augmentation,
            labels=self.labels,
            metrics=dict(metrics or {}),
            base_model=self.registry.describe(self.spec.base_model),
            splits={
                "train": artifacts.split_summary(self.train_examples, labelled=bool(self.labels)),
                "validation": artifacts.split_summary(self.validation_examples, labelled=bool(self.labels)),
            },
        )

    def _require_setup(self, method: str) -> None:
        if not self._ready:
            raise RuntimeError(ERROR_NOT_SET_UP.format(method=method))
