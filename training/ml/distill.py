"""Knowledge distillation: a finished teacher's soft labels train a smaller student classifier.

The teacher (a run's saved model) scores the student's train texts and, optionally, unlabelled texts; its
logits are kept, and the recipe (training/ml/recipe.py) trains the student on

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))     (every example: labelled or not)
         + (1 - alpha) * cross-entropy(student, human label)                (labelled examples only)

(Hinton et al., 2015: the T^2 keeps the soft term's gradients on the scale of the hard one's as T changes). Each
term is a mean over the examples it applies to, so unlabelled texts add teacher knowledge without diluting the
human labels. Validation and test use the human labels only: the student is judged as the teacher was.

Sizes and speeds are measured so the two can be compared: parameters, the bytes of weights inference loads
(the base model's and an adapter's for an adapter run, the whole model for a full one), and items per second
over the same texts, teacher and student timed in alternating rounds in one process so a busy machine slows both
alike. No Django here.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from training.ml.evaluation import classification_scored, with_intervals
from training.ml.metrics import paired_difference
from training.ml.predict import class_logits, softmax

COMPARED = ("macro_f1", "accuracy")

SPEED_ROUNDS = 3

ERROR_TEACHER_ROWS = "the teacher scored {found} train texts but the student has {expected}"
ERROR_TEACHER_LABELS = "the teacher's logits have {found} columns but the student has {expected} labels"
ERROR_UNLABELLED_ROWS = "{texts} unlabelled texts but {logits} rows of teacher logits for them"


@dataclass(frozen=True)
class TeacherTargets:
    """The teacher's logits for the student's train rows (in their order) and for extra unlabelled texts.

    Logits rather than probabilities so any temperature can be applied later; the labels are the student's, in
    the same column order (the caller checks the teacher was trained on the same labels).
    """

    train_logits: np.ndarray
    unlabelled_texts: Sequence[str] = ()
    unlabelled_logits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    def check(self, *, train_rows: int, labels: int) -> None:
        if self.train_logits.shape[0] != train_rows:
            raise ValueError(ERROR_TEACHER_ROWS.format(found=self.train_logits.shape[0], expected=train_rows))
        if self.train_logits.ndim != 2 or self.train_logits.shape[1] != labels:
            raise ValueError(ERROR_TEACHER_LABELS.format(found=self.train_logits.shape[-1], expected=labels))
        if len(self.unlabelled_texts) != len(self.unlabelled_logits):
            raise ValueError(
                ERROR_UNLABELLED_ROWS.format(texts=len(self.unlabelled_texts), logits=len(self.unlabelled_logits))
            )
        if len(self.unlabelled_texts) and self.unlabelled_logits.shape[1] != labels:
            raise ValueError(ERROR_TEACHER_LABELS.format(found=self.unlabelled_logits.shape[1], expected=labels))


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)) of each example (a vector), in float32."""
    teacher_log_p = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    student_log_p = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return (teacher_log_p.exp() * (teacher_log_p - student_log_p)).sum(dim=-1)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    labelled: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """alpha * T^2 * mean KL over all examples + (1 - alpha) * cross-entropy over the `labelled` ones (a bool mask).

    A batch without labelled examples (all unlabelled texts) has only the soft term; class weights, when given,
    weigh the cross-entropy as in ordinary training.
    """
    soft = temperature**2 * soft_kl(student_logits, teacher_logits, temperature).mean()
    if alpha >= 1.0 or not bool(labelled.any()):
        return alpha * soft
    hard = F.cross_entropy(student_logits[labelled].float(), labels[labelled], weight=class_weights)
    return alpha * soft + (1.0 - alpha) * hard


def inference_parameters(model: nn.Module) -> int:
    """Parameters the model predicts with. PEFT keeps an untrained copy of each module it trains whole
    (`original_module`, unused once the adapter is on); it is not counted."""
    return sum(param.numel() for name, param in model.named_parameters() if ".original_module." not in name)


@dataclass(frozen=True)
class Timed:
    """A model to time: its module and tokenizer, and the max length and batch size it predicts with."""

    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    max_length: int
    batch_size: int


def compare_speed(
    models: Mapping[str, Timed], texts: Sequence[str], *, device: torch.device, rounds: int = SPEED_ROUNDS
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Items per second of each model over `texts` (the median of `rounds` timed passes, and every pass's figure),
    and each model's logits for the texts.

    One untimed warm-up pass each, then the models take turns, round after round, so a slowdown of the machine
    during the measurement falls on all of them rather than on whichever ran last.
    """
    logits: dict[str, np.ndarray] = {}
    if not texts:
        return {}, logits

    def one_pass(name: str, timed: Timed) -> float:
        started = time.perf_counter()
        logits[name] = class_logits(
            timed.model, timed.tokenizer, texts, max_length=timed.max_length, batch_size=timed.batch_size,
            device=device,
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return len(texts) / max(time.perf_counter() - started, 1e-9)

    for name, timed in models.items():
        one_pass(name, timed)
    passes: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, timed in models.items():
            passes[name].append(one_pass(name, timed))
    speeds = {
        name: {"items_per_s": statistics.median(values), "passes": values, "items": len(texts)}
        for name, values in passes.items()
    }
    return speeds, logits


def teacher_comparison(
    *,
    student: Timed,
    teacher: Timed,
    texts: Sequence[str],
    label_ids: np.ndarray,
    labels: Sequence[str],
    device: torch.device,
    rounds: int = SPEED_ROUNDS,
) -> dict[str, Any]:
    """Student and teacher on the same test texts: each one's speed, accuracy and macro-F1 with 95% bootstrap
    intervals, and the paired-bootstrap interval of the difference (student minus teacher) of each figure."""
    speeds, logits = compare_speed({"student": student, "teacher": teacher}, texts, device=device, rounds=rounds)
    if not speeds:
        return {}
    n = len(texts)
    scored = {name: classification_scored(label_ids, softmax(logits[name]), labels) for name in ("student", "teacher")}
    report: dict[str, Any] = {"n": n}
    for name, model_scored in scored.items():
        figures = with_intervals(model_scored, n=n)
        report[name] = {
            **{key: figures[key] for key in COMPARED},
            "intervals": {key: figures["intervals"][key] for key in COMPARED if key in figures["intervals"]},
            "speed": speeds[name],
        }
    report["difference"] = {
        key: {
            "value": scored["student"].metrics[key] - scored["teacher"].metrics[key],
            "interval": paired_difference(scored["student"].statistics[key], scored["teacher"].statistics[key], n),
        }
        for key in COMPARED
        if key in scored["student"].statistics
    }
    report["agreement"] = float((logits["student"].argmax(axis=1) == logits["teacher"].argmax(axis=1)).mean())
    return report
