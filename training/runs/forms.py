"""The run form: TrainingSpec's fields as grouped form fields, and posted text back into spec values.

Validation is TrainingSpec's (plus the registry and snapshot checks in services): text that is not a number is
passed on as text, so the spec itself reports "must be a whole number" next to the field, the same message the
API gives. No Django form classes: the fields follow the dataclass, so a new spec field needs one line here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.http import QueryDict

from training.spec import (
    CURRICULA,
    EARLY_STOPPING_METRICS,
    LR_SCHEDULERS,
    METHOD_FULL,
    METHOD_LORA,
    METHODS,
    TASK_CAUSAL_LM,
    TASK_SPANS,
    TrainingSpec,
)

# spec.py postpones annotations, so a field's type is its annotation's text.
INT_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainingSpec) if f.type == "int")


FLOAT_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainingSpec) if f.type == "float")


BF16_CHOICES = (("", "Automatic (on CUDA when supported)"), ("true", "On"), ("false", "Off"))


# What each spec field is called on the page: people's words, not the attribute's.
LABELS = {
    "base_model": "Base model",
    "method": "Fine-tuning method",
    "lora_r": "LoRA rank (r)",
    "lora_alpha": "LoRA alpha (scaling)",
    "lora_dropout": "LoRA dropout",
    "target_modules": "Target modules",
    "freeze_layers": "Frozen lower layers",
    "learning_rate": "Learning rate",
    "lr_scheduler": "Learning-rate schedule",
    "warmup_ratio": "Warm-up (share of steps)",
    "weight_decay": "Weight decay",
    "max_grad_norm": "Gradient clipping (max norm)",
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "grad_accum": "Gradient accumulation steps",
    "max_length": "Maximum length (tokens)",
    "seed": "Random seed",
    "bf16": "bfloat16 mixed precision",
    "eval_steps": "Validate every (steps)",
    "save_steps": "Checkpoint every (steps)",
    "early_stopping_metric": "Early-stopping metric",
    "early_stopping_patience": "Early-stopping patience",
    "class_weights": "Class weights",
    "curriculum": "Curriculum",
    "max_new_tokens": "Maximum new tokens",
    "student_layers": "Layers kept",
    "distill_temperature": "Temperature (T)",
    "distill_alpha": "Alpha (weight of the teacher's soft labels)",
    "distill_unlabelled": "Include unlabelled items",
}


LR_SCHEDULER_CHOICES = {"linear": "Linear decay", "cosine": "Cosine decay", "constant": "Constant"}


CURRICULUM_CHOICES = {"none": "None: shuffled", "agreement": "Agreement: agreed items first"}


METRIC_CHOICES = {"loss": "Loss", "accuracy": "Accuracy", "macro_f1": "Macro F1", "perplexity": "Perplexity"}


METHOD_CHOICES = {"lora": "LoRA", "ia3": "IA3", "full": "Full fine-tuning"}


# (title, fields): the order the form shows them in.
GROUPS = (
    ("Model and method", ("base_model", "method", "lora_r", "lora_alpha", "lora_dropout", "target_modules",
                          "freeze_layers", "student_layers")),
    ("Optimisation", ("learning_rate", "lr_scheduler", "warmup_ratio", "weight_decay", "max_grad_norm", "epochs",
                      "batch_size", "grad_accum", "max_length", "seed", "bf16")),
    ("Validation and checkpoints", ("eval_steps", "save_steps", "early_stopping_metric",
                                    "early_stopping_patience")),
    ("Data", ("class_weights", "curriculum")),
    ("Generation", ("max_new_tokens",)),
)


# The settings the span recipe (training/ml/spans.py) reads; the form shows only these for a span run.
SPAN_FIELDS = frozenset({
    "base_model", "method", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate", "epochs",
    "batch_size", "max_length", "seed", "save_steps",
})


HELP = {
    "method": "LoRA trains small low-rank adapters; IA3 trains rescaling vectors; full trains every weight.",
    "lora_r": "Rank of the LoRA matrices (LoRA only): higher learns more and is slower; 8 or 16 usually do.",
    "lora_alpha": "Scales the adapters' update (LoRA only); commonly twice the rank.",
    "lora_dropout": "Dropout on the adapters' input (LoRA only), 0 to 1.",
    "lr_scheduler": "How the learning rate falls over training after the warm-up.",
    "warmup_ratio": "Share of the steps, 0 to 1, over which the learning rate rises to its value.",
    "weight_decay": "L2 penalty on the weights (AdamW).",
    "max_grad_norm": "Gradients are scaled down to this norm; 0 turns clipping off.",
    "batch_size": "Examples per step on the device.",
    "grad_accum": "Steps whose gradients are added up before one update: effective batch = batch size × this.",
    "seed": "Same seed, same snapshot and settings: the same run.",
    "bf16": "Faster and lighter on GPUs that support it; the CPU trains in float32.",
    "early_stopping_metric": "Measured on the validation split after each validation.",
    "target_modules": "Comma-separated module names; empty for the model's usual ones.",
    "freeze_layers": "Full fine-tuning only: the lowest layers that stay frozen.",
    "learning_rate": "Changing the method resets this to the method's default.",
    "max_length": "Tokens per example; longer ones are cut.",
    "eval_steps": "0: validate at the end of every epoch.",
    "save_steps": "0: checkpoint at the end of every epoch.",
    "early_stopping_patience": "Validations without improvement before stopping; 0 turns it off.",
    "class_weights": 'JSON such as {"spam": 2.5}; pre-filled from the snapshot\'s class-balance report.',
    "curriculum": "agreement: learn the items annotators agreed on first, the disputed ones last.",
    "max_new_tokens": "Tokens generated per prompt when evaluating.",
    "student_layers": (
        "Keep this many of the encoder's layers, spread evenly from the bottom (3 of 6 keeps the 1st, 3rd and 5th; "
        "2 of 6 the 1st and 4th): smaller and faster. Needs full fine-tuning. 0 keeps them all."
    ),
    "distill_temperature": (
        "Softens the teacher's probabilities: above 1 shows the student how sure the teacher was of each label."
    ),
    "distill_alpha": (
        "1: learn from the teacher alone; 0: from the human labels alone. Unlabelled items always use the teacher."
    ),
    "distill_unlabelled": (
        "Items of the project without a final label (never ones in a snapshot), learnt from the teacher's soft labels."
    ),
}


# The distil form: what a student changes from its teacher's settings (the rest are copied, services.py).
DISTIL_GROUPS = (
    ("Student model", ("base_model", "student_layers", "method")),
    ("Distillation", ("distill_temperature", "distill_alpha", "distill_unlabelled")),
    ("Optimisation", ("learning_rate", "epochs", "batch_size", "max_length")),
)


YES_NO = (("true", "Yes"), ("false", "No"))


DISTIL_HELP = {
    **HELP,
    "base_model": "The teacher's encoder (keep fewer of its layers) or another registered, smaller one.",
    "method": "A student with fewer layers is trained whole: the layers kept must re-learn to work together.",
    "learning_rate": "1e-4 suits a whole small encoder (bench/distill.py); the teacher's LoRA rate is far higher.",
}


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    value: str
    kind: str  # "select", "number", "text" or "textarea"
    choices: tuple[tuple[str, str], ...] = ()
    error: str = ""
    help: str = ""


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(value)
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    return str(value)


def _choices(values: tuple[str, ...], names: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    return tuple((v, (names or {}).get(v, v)) for v in values)


def form_fields(
    *,
    task: str,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    base_models: list[str],
    groups_shown: tuple[tuple[str, tuple[str, ...]], ...] = GROUPS,
    helps: Mapping[str, str] = HELP,
) -> list[tuple[str, list[Field]]]:
    """The grouped fields to render, each with its current value and its error."""
    selects = {
        "distill_unlabelled": YES_NO,
        "base_model": _choices(tuple(base_models)),
        "method": _choices(METHODS, METHOD_CHOICES),
        "lr_scheduler": _choices(LR_SCHEDULERS, LR_SCHEDULER_CHOICES),
        "early_stopping_metric": _choices(EARLY_STOPPING_METRICS[task], METRIC_CHOICES),
        "curriculum": _choices(CURRICULA, CURRICULUM_CHOICES),
        "bf16": BF16_CHOICES,
    }
    if task == TASK_SPANS:
        selects["method"] = _choices((METHOD_LORA,), METHOD_CHOICES)
    groups = []
    for title, names in groups_shown:
        fields = []
        for name in names:
            if name == "class_weights" and task == TASK_CAUSAL_LM:
                continue
            if name == "max_new_tokens" and task != TASK_CAUSAL_LM:
                continue
            if task == TASK_SPANS and name not in SPAN_FIELDS:
                continue
            if name in selects:
                kind = "select"
            elif name in INT_FIELDS or name in FLOAT_FIELDS:
                kind = "number"
            else:
                kind = "textarea" if name == "class_weights" else "text"
            fields.append(
                Field(
                    name=name,
                    label=LABELS.get(name, name.replace("_", " ").capitalize()),
                    value=_as_text(values.get(name)),
                    kind=kind,
                    choices=selects.get(name, ()),
                    error=errors.get(name, ""),
                    help=helps.get(name, ""),
                )
            )
        if fields:
            groups.append((title, fields))
    return groups


def _number(raw: str, kind: type) -> Any:
    try:
        return kind(raw.strip())
    except ValueError:
        return raw  # the spec says what is wrong with it


def spec_data_from_post(post: QueryDict, *, task: str) -> dict[str, Any]:
    """The posted fields as spec values; unparseable text is kept as text for the spec to reject by name."""
    data: dict[str, Any] = {}
    for field in dataclasses.fields(TrainingSpec):
        name = field.name
        if name == "task" or name not in post:
            continue
        raw = post.get(name, "")
        if name in INT_FIELDS:
            data[name] = _number(raw, int)
        elif name in FLOAT_FIELDS:
            data[name] = _number(raw, float)
        elif name == "bf16":
            data[name] = {"": None, "true": True, "false": False}.get(raw, raw)
        elif name == "distill_unlabelled":
            data[name] = {"true": True, "false": False}.get(raw, raw)
        elif name == "target_modules":
            modules = [part.strip() for part in raw.split(",") if part.strip()]
            data[name] = modules or None
        elif name == "class_weights":
            data[name] = _json_or_text(raw) if raw.strip() else None
        else:
            data[name] = raw.strip()
    return data


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def initial_values(
    *, task: str, method: str, class_weights: Mapping[str, float] | None, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Pre-filled values: the task's defaults for `method`, the snapshot's class weights, then what was typed.

    When the method changes, its default learning rate replaces the old one (the rates differ by 100x), and
    frozen layers are cleared unless the new method is full fine-tuning.
    """
    values = TrainingSpec.defaults(task, method=method).to_dict()
    if class_weights and task != TASK_CAUSAL_LM:
        values["class_weights"] = dict(class_weights)
    if current:
        values.update({k: v for k, v in current.items() if k != "learning_rate"})
        values["method"] = method
        if method != METHOD_FULL:
            values["freeze_layers"] = 0
    return values
