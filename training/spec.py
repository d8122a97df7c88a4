"""The training configuration: one frozen, validated, JSON-round-tripping dataclass.

A run stores `TrainingSpec.to_dict()` in the database and a checkpoint stores it too, so what trained a model
can always be rebuilt with `TrainingSpec.from_dict`. Validation reports every invalid field at once, each with a
message a form can show next to the field. This module is pure: no Django, no torch.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TASK_CLASSIFICATION = "classification"
TASK_CAUSAL_LM = "causal_lm"
# Token classification of span projects: trained by training/ml/spans.py (LoRA only), not by the Recipe.
TASK_SPANS = "spans"
LEAST_WORD = "least_word"  # key of a span output's probabilities: its least sure word's tag probability
TASKS = (TASK_CLASSIFICATION, TASK_CAUSAL_LM, TASK_SPANS)

METHOD_LORA = "lora"
METHOD_IA3 = "ia3"
METHOD_FULL = "full"
METHODS = (METHOD_LORA, METHOD_IA3, METHOD_FULL)

# How an output is explained (training/ml/explain.py): word attributions, or a response's token log-probabilities.
EXPLAIN_INTEGRATED_GRADIENTS = "integrated_gradients"
EXPLAIN_RESPONSE_LOGPROBS = "token_logprobs"
EXPLAIN_SPAN_INTEGRATED_GRADIENTS = "span_integrated_gradients"

ADAPTER_METHODS = (METHOD_LORA, METHOD_IA3)

LR_SCHEDULERS = ("linear", "cosine", "constant")
CURRICULA = ("none", "agreement")
EARLY_STOPPING_METRICS = {
    TASK_CLASSIFICATION: ("loss", "accuracy", "macro_f1"),
    TASK_CAUSAL_LM: ("loss", "perplexity"),
    TASK_SPANS: ("loss",),
}
LOWER_IS_BETTER = frozenset({"loss", "perplexity"})

DEFAULT_BASE_MODELS = {TASK_CLASSIFICATION: "minilm", TASK_CAUSAL_LM: "smollm2-135m", TASK_SPANS: "minilm"}

ERROR_NOT_OBJECT = "must be a JSON object of training settings"
ERROR_UNKNOWN_FIELD = "is not a training setting"
ERROR_CHOICE = "must be one of: {choices}"
ERROR_TEXT = "must be a non-empty text"
ERROR_WHOLE_NUMBER = "must be a whole number"
ERROR_NUMBER = "must be a number"
ERROR_AT_LEAST = "must be at least {minimum}"
ERROR_AT_MOST = "must be at most {maximum}"
# Whole numbers are bounded so a huge one (a seed of 2**70) is a clear error, not an overflow in torch or numpy.
WHOLE_MAX = 2**31 - 1
ERROR_BETWEEN = "must be between {low} and {high}"
ERROR_POSITIVE = "must be greater than 0"
ERROR_MODULE_NAMES = "must be a non-empty list of module names, or null for the model's usual ones"
ERROR_FREEZE_NEEDS_FULL = "only applies to method 'full'"
ERROR_CLASS_WEIGHTS_TASK = "only applies to task 'classification'"
ERROR_CLASS_WEIGHTS = "must map each label to a positive number"
ERROR_METRIC = "must be one of {choices} for task '{task}'"
ERROR_SPANS_LORA = "must be 'lora' for task 'spans' (the span recipe trains LoRA adapters and the head)"
ERROR_BF16 = "must be true, false, or null to use bf16 whenever CUDA supports it"
ERROR_BOOLEAN = "must be true or false"
ERROR_STUDENT_LAYERS_FULL = (
    "fewer layers need method 'full': the kept layers must re-learn to work without the removed ones, and the "
    "smaller model is then saved whole"
)
ERROR_STUDENT_LAYERS_TASK = "only applies to task 'classification'"
ERROR_FREEZE_ABOVE_STUDENT = "must be at most student_layers ({layers})"


class SpecError(ValueError):
    """A spec with one or more invalid fields; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        listed = "; ".join(f"{field}: {message}" for field, message in self.errors.items())
        super().__init__(f"invalid training spec: {listed}")


@dataclass(frozen=True)
class TrainingSpec:
    """How to fine-tune one base model on one snapshot.

    `method` picks what is trained: "lora" (low-rank adapters of rank `lora_r`), "ia3" (learned rescaling
    vectors) or "full" (every weight, except the embeddings and the `freeze_layers` lowest layers when that is
    above 0). `target_modules=None` uses PEFT's usual modules for the architecture. `eval_steps`/`save_steps`
    of 0 mean "at the end of every epoch". `early_stopping_patience` counts evaluations without improvement of
    `early_stopping_metric`; 0 turns early stopping off. `bf16=None` uses bf16 autocast whenever CUDA supports it.
    `curriculum="agreement"` orders training from high to low annotator agreement (easy to hard).

    `student_layers` above 0 keeps that many of the base model's transformer layers, spread evenly from the bottom
    (training/ml/modeling.py, `student_layer_indices`): a smaller, faster encoder, trained whole ("full"). The
    `distill_*` fields apply only to a run that has a teacher run (knowledge distillation, training/ml/distill.py):
    the loss is `distill_alpha` x T^2 x KL(teacher || student) at temperature T=`distill_temperature` plus
    (1 - `distill_alpha`) x cross-entropy with the human labels; `distill_unlabelled` adds the project's unlabelled
    items, learnt from the teacher's soft labels alone.
    """

    task: str
    base_model: str
    method: str = METHOD_LORA
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: tuple[str, ...] | None = None
    freeze_layers: int = 0
    learning_rate: float = 5e-4
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    epochs: int = 3
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 128
    early_stopping_patience: int = 2
    early_stopping_metric: str = "macro_f1"
    seed: int = 42
    class_weights: Mapping[str, float] | None = None
    curriculum: str = "none"
    eval_steps: int = 0
    save_steps: int = 0
    bf16: bool | None = None
    max_new_tokens: int = 64
    student_layers: int = 0
    distill_temperature: float = 2.0
    distill_alpha: float = 0.5
    distill_unlabelled: bool = True

    def __post_init__(self) -> None:
        # Lists from JSON become tuples and dicts read-only copies, so a frozen spec is frozen all the way down.
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if isinstance(self.class_weights, Mapping):
            object.__setattr__(self, "class_weights", types.MappingProxyType(dict(self.class_weights)))

    @classmethod
    def defaults(cls, task: str, *, method: str = METHOD_LORA, base_model: str | None = None) -> TrainingSpec:
        """Settings that work for `task` with `method` on the built-in base models, before any tuning."""
        if task not in TASKS:
            raise SpecError({"task": ERROR_CHOICE.format(choices=", ".join(TASKS))})
        if method not in METHODS:
            raise SpecError({"method": ERROR_CHOICE.format(choices=", ".join(METHODS))})
        if task == TASK_CLASSIFICATION:
            # Measured on the demo's SMS spam (96 training rows, 3 epochs, MiniLM): LoRA at 5e-4 and IA3 at 3e-3
            # still predicted the majority class; 3e-3 and 1e-2 reached macro-F1 0.9-1.0 on the test split.
            learning_rates = {METHOD_LORA: 3e-3, METHOD_IA3: 1e-2, METHOD_FULL: 3e-5}
            shape: dict[str, Any] = dict(
                batch_size=16, epochs=3, max_length=128, lora_dropout=0.1, early_stopping_metric="macro_f1"
            )
        elif task == TASK_SPANS:
            # The span recipe's own defaults (training/ml/spans.py, what `span_train` uses): LoRA at 2e-3, 5 epochs.
            learning_rates = {METHOD_LORA: 2e-3, METHOD_IA3: 2e-3, METHOD_FULL: 2e-3}
            shape = dict(batch_size=16, epochs=5, max_length=128, lora_dropout=0.0, early_stopping_metric="loss")
        else:
            # Measured by bench/causal_lm_defaults.py (SmolLM2-135M, 48 chatterbot pairs, 40 held out; docs/training):
            # LoRA at 2e-4 for 2 epochs moved the held-out loss 2.081 -> 1.994; 1e-3 for 5 epochs -> 1.624 (r 16 on
            # every linear layer: 1.615, at several times the cost; 2e-3: 1.606). Early stopping on the validation
            # loss keeps the extra epochs from overfitting a larger set.
            learning_rates = {METHOD_LORA: 1e-3, METHOD_IA3: 1e-3, METHOD_FULL: 2e-5}
            shape = dict(batch_size=8, epochs=5, max_length=256, lora_dropout=0.05, early_stopping_metric="loss")
        return cls(
            task=task,
            base_model=base_model or DEFAULT_BASE_MODELS[task],
            method=method,
            learning_rate=learning_rates[method],
            **shape,
        )

    @classmethod
    def from_dict(cls, data: Any) -> TrainingSpec:
        """Build and validate a spec from JSON; fields left out take `defaults(task, method=...)`."""
        if not isinstance(data, Mapping):
            raise SpecError({"spec": ERROR_NOT_OBJECT})
        known = {f.name for f in dataclasses.fields(cls)}
        errors = {str(key): ERROR_UNKNOWN_FIELD for key in data if key not in known}
        values = {key: value for key, value in data.items() if key in known}
        task, method = values.get("task"), values.get("method", METHOD_LORA)
        if task in TASKS and method in METHODS:
            base = cls.defaults(task, method=method).to_dict()
            values = {**base, **values}
        else:
            values.setdefault("task", task)
            values.setdefault("base_model", "")
        spec = cls(**values)
        errors.update(spec.errors())
        if errors:
            raise SpecError(errors)
        return spec

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only: lists for tuples, a dict for the class weights."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["target_modules"] = list(self.target_modules) if self.target_modules is not None else None
        data["class_weights"] = dict(self.class_weights) if self.class_weights is not None else None
        return data

    def validate(self) -> TrainingSpec:
        """Return the spec itself, or raise SpecError naming every invalid field."""
        errors = self.errors()
        if errors:
            raise SpecError(errors)
        return self

    def errors(self) -> dict[str, str]:
        """Every invalid field and what is wrong with it; empty when the spec is valid."""
        errors: dict[str, str] = {}

        def choice(field: str, options: tuple[str, ...]) -> None:
            if getattr(self, field) not in options:
                errors[field] = ERROR_CHOICE.format(choices=", ".join(options))

        def whole(field: str, minimum: int) -> None:
            value = getattr(self, field)
            if not _is_int(value):
                errors[field] = ERROR_WHOLE_NUMBER
            elif value < minimum:
                errors[field] = ERROR_AT_LEAST.format(minimum=minimum)
            elif value > WHOLE_MAX:
                errors[field] = ERROR_AT_MOST.format(maximum=WHOLE_MAX)

        def number(field: str, low: float, high: float, *, open_low: bool = False) -> None:
            value = getattr(self, field)
            if not _is_number(value):
                errors[field] = ERROR_NUMBER
            elif open_low and value <= low:
                errors[field] = ERROR_POSITIVE
            elif not low <= value <= high:
                errors[field] = ERROR_BETWEEN.format(low=low, high=high)

        choice("task", TASKS)
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            errors["base_model"] = ERROR_TEXT
        choice("method", METHODS)
        if self.task == TASK_SPANS and "method" not in errors and self.method != METHOD_LORA:
            errors["method"] = ERROR_SPANS_LORA
        whole("lora_r", 1)
        whole("lora_alpha", 1)
        number("lora_dropout", 0.0, 0.9)
        if self.target_modules is not None and not (
            isinstance(self.target_modules, tuple)
            and self.target_modules
            and all(isinstance(name, str) and name.strip() for name in self.target_modules)
        ):
            errors["target_modules"] = ERROR_MODULE_NAMES
        whole("freeze_layers", 0)
        if "freeze_layers" not in errors and self.freeze_layers and self.method != METHOD_FULL:
            errors["freeze_layers"] = ERROR_FREEZE_NEEDS_FULL
        number("learning_rate", 0.0, 1.0, open_low=True)
        choice("lr_scheduler", LR_SCHEDULERS)
        number("warmup_ratio", 0.0, 0.5)
        number("weight_decay", 0.0, 1.0)
        number("max_grad_norm", 0.0, 1e6, open_low=True)
        whole("epochs", 1)
        whole("batch_size", 1)
        whole("grad_accum", 1)
        whole("max_length", 8)
        whole("early_stopping_patience", 0)
        metrics = EARLY_STOPPING_METRICS.get(self.task)
        if metrics is not None and self.early_stopping_metric not in metrics:
            errors["early_stopping_metric"] = ERROR_METRIC.format(choices=", ".join(metrics), task=self.task)
        whole("seed", 0)
        if self.class_weights is not None:
            if self.task != TASK_CLASSIFICATION:
                errors["class_weights"] = ERROR_CLASS_WEIGHTS_TASK
            elif not (
                isinstance(self.class_weights, Mapping)
                and self.class_weights
                and all(
                    isinstance(label, str) and _is_number(weight) and weight > 0
                    for label, weight in self.class_weights.items()
                )
            ):
                errors["class_weights"] = ERROR_CLASS_WEIGHTS
        choice("curriculum", CURRICULA)
        whole("eval_steps", 0)
        whole("save_steps", 0)
        if not (self.bf16 is None or isinstance(self.bf16, bool)):
            errors["bf16"] = ERROR_BF16
        whole("max_new_tokens", 1)
        whole("student_layers", 0)
        if "student_layers" not in errors and self.student_layers:
            if self.task != TASK_CLASSIFICATION:
                errors["student_layers"] = ERROR_STUDENT_LAYERS_TASK
            elif self.method != METHOD_FULL:
                errors["student_layers"] = ERROR_STUDENT_LAYERS_FULL
            elif _is_int(self.freeze_layers) and self.freeze_layers > self.student_layers:
                errors["freeze_layers"] = ERROR_FREEZE_ABOVE_STUDENT.format(layers=self.student_layers)
        number("distill_temperature", 0.0, 100.0, open_low=True)
        number("distill_alpha", 0.0, 1.0)
        if not isinstance(self.distill_unlabelled, bool):
            errors["distill_unlabelled"] = ERROR_BOOLEAN
        return errors

    @property
    def uses_adapter(self) -> bool:
        return self.method in ADAPTER_METHODS


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
