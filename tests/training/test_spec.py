"""TrainingSpec: every invalid field reported at once, JSON round trip, per-task defaults."""

from __future__ import annotations

import dataclasses
import json

import pytest

from training.spec import (
    ERROR_AT_LEAST,
    ERROR_BETWEEN,
    ERROR_BF16,
    ERROR_CHOICE,
    ERROR_CLASS_WEIGHTS,
    ERROR_CLASS_WEIGHTS_TASK,
    ERROR_FREEZE_NEEDS_FULL,
    ERROR_METRIC,
    ERROR_MODULE_NAMES,
    ERROR_NOT_OBJECT,
    ERROR_NUMBER,
    ERROR_POSITIVE,
    ERROR_TEXT,
    ERROR_UNKNOWN_FIELD,
    ERROR_WHOLE_NUMBER,
    LR_SCHEDULERS,
    METHODS,
    SpecError,
    TrainingSpec,
)


def test_defaults_are_valid_for_every_task_and_method():
    for task in ("classification", "causal_lm"):
        for method in METHODS:
            spec = TrainingSpec.defaults(task, method=method)
            assert spec.validate() is spec
            assert spec.task == task and spec.method == method
    assert TrainingSpec.defaults("classification").base_model == "minilm"
    assert TrainingSpec.defaults("causal_lm").base_model == "smollm2-135m"
    assert TrainingSpec.defaults("causal_lm").early_stopping_metric == "loss"
    assert (
        TrainingSpec.defaults("classification", method="full").learning_rate
        < TrainingSpec.defaults("classification").learning_rate
    )


def test_json_round_trip_keeps_every_field():
    spec = dataclasses.replace(
        TrainingSpec.defaults("classification"),
        target_modules=("query", "value"),
        class_weights={"spam": 3.0, "ham": 1.0},
        curriculum="agreement",
        eval_steps=10,
        save_steps=20,
        bf16=False,
    )
    data = json.loads(json.dumps(spec.to_dict()))
    assert data["target_modules"] == ["query", "value"]
    assert data["class_weights"] == {"spam": 3.0, "ham": 1.0}
    again = TrainingSpec.from_dict(data)
    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_spec_is_frozen_all_the_way_down():
    spec = TrainingSpec.from_dict({"task": "classification", "class_weights": {"a": 2.0}, "target_modules": ["q"]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.epochs = 9
    with pytest.raises(TypeError):
        spec.class_weights["a"] = 1.0
    assert isinstance(spec.target_modules, tuple)


def test_from_dict_fills_missing_fields_from_task_and_method_defaults():
    spec = TrainingSpec.from_dict({"task": "causal_lm", "method": "full", "epochs": 5})
    defaults = TrainingSpec.defaults("causal_lm", method="full")
    assert spec == dataclasses.replace(defaults, epochs=5)


def test_every_invalid_field_is_reported_at_once():
    bad = {
        "task": "causal_lm",
        "base_model": "  ",
        "method": "lora",
        "lora_r": 0,
        "lora_alpha": 2.5,
        "lora_dropout": 1.5,
        "target_modules": [],
        "freeze_layers": 2,
        "learning_rate": 0,
        "lr_scheduler": "step",
        "warmup_ratio": 0.9,
        "weight_decay": "a lot",
        "max_grad_norm": -1,
        "epochs": 0,
        "batch_size": True,
        "grad_accum": 0,
        "max_length": 4,
        "early_stopping_patience": -1,
        "early_stopping_metric": "macro_f1",
        "seed": -3,
        "class_weights": {"a": 1.0},
        "curriculum": "random",
        "eval_steps": -1,
        "save_steps": 1.5,
        "bf16": "yes",
        "max_new_tokens": 0,
        "colour": "blue",
    }
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict(bad)
    errors = caught.value.errors
    assert errors == {
        "colour": ERROR_UNKNOWN_FIELD,
        "base_model": ERROR_TEXT,
        "lora_r": ERROR_AT_LEAST.format(minimum=1),
        "lora_alpha": ERROR_WHOLE_NUMBER,
        "lora_dropout": ERROR_BETWEEN.format(low=0.0, high=0.9),
        "target_modules": ERROR_MODULE_NAMES,
        "freeze_layers": ERROR_FREEZE_NEEDS_FULL,
        "learning_rate": ERROR_POSITIVE,
        "lr_scheduler": ERROR_CHOICE.format(choices=", ".join(LR_SCHEDULERS)),
        "warmup_ratio": ERROR_BETWEEN.format(low=0.0, high=0.5),
        "weight_decay": ERROR_NUMBER,
        "max_grad_norm": ERROR_POSITIVE,
        "epochs": ERROR_AT_LEAST.format(minimum=1),
        "batch_size": ERROR_WHOLE_NUMBER,
        "grad_accum": ERROR_AT_LEAST.format(minimum=1),
        "max_length": ERROR_AT_LEAST.format(minimum=8),
        "early_stopping_patience": ERROR_AT_LEAST.format(minimum=0),
        "early_stopping_metric": ERROR_METRIC.format(choices="loss, perplexity", task="causal_lm"),
        "seed": ERROR_AT_LEAST.format(minimum=0),
        "class_weights": ERROR_CLASS_WEIGHTS_TASK,
        "curriculum": ERROR_CHOICE.format(choices="none, agreement"),
        "eval_steps": ERROR_AT_LEAST.format(minimum=0),
        "save_steps": ERROR_WHOLE_NUMBER,
        "bf16": ERROR_BF16,
        "max_new_tokens": ERROR_AT_LEAST.format(minimum=1),
    }
    message = str(caught.value)
    assert all(field in message for field in errors)


def test_validate_reports_fields_of_a_directly_built_spec():
    spec = TrainingSpec(task="summarise", base_model="minilm", method="prefix", class_weights={"a": -1})
    with pytest.raises(SpecError) as caught:
        spec.validate()
    assert caught.value.errors["class_weights"] == ERROR_CLASS_WEIGHTS_TASK
    assert set(caught.value.errors) == {"task", "method", "class_weights"}
    spec = TrainingSpec(task="classification", base_model="minilm", class_weights={"a": 0, "b": 1})
    assert spec.errors() == {"class_weights": ERROR_CLASS_WEIGHTS}


def test_missing_task_and_non_object_are_reported():
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict({})
    assert set(caught.value.errors) == {"task", "base_model"}
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict(["task"])
    assert caught.value.errors == {"spec": ERROR_NOT_OBJECT}


def test_freeze_layers_is_accepted_with_full_fine_tuning():
    spec = TrainingSpec.from_dict({"task": "classification", "method": "full", "freeze_layers": 3})
    assert spec.freeze_layers == 3
    assert not spec.uses_adapter


def test_student_and_distillation_settings_are_validated_and_old_specs_still_load():
    from training.spec import ERROR_FREEZE_ABOVE_STUDENT, ERROR_STUDENT_LAYERS_FULL, ERROR_STUDENT_LAYERS_TASK

    old = TrainingSpec.defaults("classification").to_dict()
    for key in ("student_layers", "distill_temperature", "distill_alpha", "distill_unlabelled"):
        old.pop(key)
    spec = TrainingSpec.from_dict(old)  # a run saved before these settings existed
    assert (spec.student_layers, spec.distill_temperature, spec.distill_alpha, spec.distill_unlabelled) == (
        0, 2.0, 0.5, True
    )
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict({"task": "classification", "method": "lora", "student_layers": 2,
                                "distill_temperature": -1, "distill_alpha": 2, "distill_unlabelled": 1})
    assert caught.value.errors == {
        "student_layers": ERROR_STUDENT_LAYERS_FULL,
        "distill_temperature": "must be greater than 0",
        "distill_alpha": "must be between 0.0 and 1.0",
        "distill_unlabelled": "must be true or false",
    }
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict({"task": "classification", "method": "full", "student_layers": 2, "freeze_layers": 3})
    assert caught.value.errors == {"freeze_layers": ERROR_FREEZE_ABOVE_STUDENT.format(layers=2)}
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict({"task": "causal_lm", "method": "full", "student_layers": 2})
    assert caught.value.errors == {"student_layers": ERROR_STUDENT_LAYERS_TASK}
    assert TrainingSpec.from_dict({"task": "classification", "method": "full", "student_layers": 3}).student_layers == 3
