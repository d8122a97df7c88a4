"""Knowledge distillation in the recipe: the loss against hand-computed values, the layer cut, and a tiny student
that learns the teacher's soft labels (including on texts that have no human label)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.fixtures.tiny_models import classification_spec, sentiment_rows
from training.ml.artifacts import inference_weights_bytes
from training.ml.data import DataError
from training.ml.distill import TeacherTargets, Timed, compare_speed, distillation_loss, soft_kl
from training.ml.modeling import ModelError, build_model, keep_spread_layers, load_base_model, student_layer_indices
from training.ml.predict import class_logits, softmax
from training.ml.recipe import Recipe


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _softmax(values: list[float], t: float) -> list[float]:
    exp = [math.exp(v / t) for v in values]
    return [e / sum(exp) for e in exp]


def test_distillation_loss_is_t_squared_kl_of_the_teachers_probabilities_mixed_with_cross_entropy():
    student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
    teacher = torch.tensor([[1.0, 3.0, 0.0], [0.0, 2.0, -2.0]])
    labels = torch.tensor([1, 2])
    t, alpha = 2.5, 0.3
    kls = [_kl(_softmax(teacher[i].tolist(), t), _softmax(student[i].tolist(), t)) for i in range(2)]
    ces = [-math.log(_softmax(student[i].tolist(), 1.0)[int(labels[i])]) for i in range(2)]

    both = distillation_loss(student, teacher, labels, torch.tensor([True, True]), temperature=t, alpha=alpha)
    assert both.item() == pytest.approx(alpha * t * t * sum(kls) / 2 + (1 - alpha) * sum(ces) / 2, rel=1e-5)

    # The second example unlabelled: it still counts in the soft term, and only the first in the hard one.
    half = distillation_loss(student, teacher, labels, torch.tensor([True, False]), temperature=t, alpha=alpha)
    assert half.item() == pytest.approx(alpha * t * t * sum(kls) / 2 + (1 - alpha) * ces[0], rel=1e-5)

    # No labelled example at all: the soft term alone; alpha 0: plain cross-entropy.
    none = distillation_loss(student, teacher, labels, torch.tensor([False, False]), temperature=t, alpha=alpha)
    assert none.item() == pytest.approx(alpha * t * t * sum(kls) / 2, rel=1e-5)
    hard = distillation_loss(student, teacher, labels, torch.tensor([True, True]), temperature=t, alpha=0.0)
    assert hard.item() == pytest.approx(sum(ces) / 2, rel=1e-5)

    # Only the teacher's probabilities matter: logits shifted by a constant per row give the same loss, and a
    # student that already says what the teacher says has no soft loss.
    shifted = distillation_loss(student, teacher + 7.0, labels, torch.tensor([True, True]), temperature=t,
                                alpha=alpha)
    assert shifted.item() == pytest.approx(both.item(), rel=1e-5)
    assert soft_kl(teacher, teacher, t).abs().max().item() < 1e-6


def test_the_soft_term_pulls_the_student_towards_the_teachers_distribution():
    student = torch.zeros(1, 2, requires_grad=True)
    teacher = torch.tensor([[2.0, 0.0]])
    distillation_loss(student, teacher, torch.tensor([1]), torch.tensor([False]), temperature=2.0, alpha=1.0).backward()
    # The gradient of T^2 KL with respect to the student's logits is T (q - p): descending it raises class 0.
    p = _softmax([1.0, 0.0], 1.0)
    assert student.grad[0].tolist() == pytest.approx([2.0 * (0.5 - p[0]), 2.0 * (0.5 - p[1])], rel=1e-5)


def test_student_layers_are_spread_from_the_bottom():
    assert student_layer_indices(12, 6) == [0, 2, 4, 6, 8, 10]
    assert student_layer_indices(6, 3) == [0, 2, 4]
    assert student_layer_indices(6, 2) == [0, 3]
    assert student_layer_indices(2, 1) == [0]
    for keep in (0, 6, 7):
        with pytest.raises(ModelError, match="keep between 1 and 5"):
            student_layer_indices(6, keep)


def test_a_cut_model_keeps_the_chosen_layers_weights_and_reloads_at_its_new_depth(registry, tmp_path):
    folder = registry.resolve("tiny-bert")
    whole, _ = load_base_model(folder, task="classification", label2id={"pos": 0, "neg": 1})
    torch.manual_seed(0)
    cut, _ = load_base_model(folder, task="classification", label2id={"pos": 0, "neg": 1}, keep_layers=1)
    assert cut.config.num_hidden_layers == 1 and len(cut.bert.encoder.layer) == 1
    assert torch.equal(cut.bert.encoder.layer[0].attention.self.query.weight,
                       whole.bert.encoder.layer[0].attention.self.query.weight)
    assert sum(p.numel() for p in cut.parameters()) < sum(p.numel() for p in whole.parameters())
    cut.save_pretrained(tmp_path / "cut")
    again = type(cut).from_pretrained(tmp_path / "cut")
    assert again.config.num_hidden_layers == 1
    ids = torch.tensor([[2, 5, 7, 3]])
    assert torch.allclose(again.eval()(input_ids=ids).logits, cut.eval()(input_ids=ids).logits)
    with pytest.raises(ModelError, match="has 1 layers"):
        keep_spread_layers(cut, 1)


def _teacher_logits(rows: list[dict], *, seed: int) -> np.ndarray:
    """A made-up teacher that is sure of the right label on some texts and unsure on others."""
    rng = np.random.default_rng(seed)
    margins = rng.uniform(-0.5, 3.0, size=len(rows))
    return np.array([[m, -m] if row["label"] == "pos" else [-m, m] for row, m in zip(rows, margins, strict=True)],
                    dtype=np.float32)


def _mean_kl(recipe: Recipe, texts: list[str], teacher: np.ndarray, t: float) -> float:
    logits = class_logits(recipe.model, recipe.tokenizer, texts, max_length=32, batch_size=16,
                          device=torch.device("cpu"))
    p, q = softmax(teacher, temperature=t), softmax(logits, temperature=t)
    return float((p * (np.log(p) - np.log(q))).sum(axis=1).mean())


def test_a_tiny_student_moves_towards_the_teachers_soft_labels_on_labelled_and_unlabelled_texts(
    registry, tmp_path, one_torch_thread
):
    train = sentiment_rows(48, seed=1)
    unlabelled = [row["text"] for row in sentiment_rows(32, seed=7)]
    teacher_train = _teacher_logits(train, seed=1)
    teacher_unlabelled = _teacher_logits(sentiment_rows(32, seed=7), seed=2)
    targets = TeacherTargets(teacher_train, unlabelled, teacher_unlabelled)
    spec = classification_spec("full", student_layers=1, learning_rate=3e-3, epochs=4, distill_temperature=2.0,
                               distill_alpha=0.9)
    recipe = Recipe(spec, train=train, labels=["pos", "neg"], checkpoint_dir=tmp_path / "ck", registry=registry,
                    teacher=targets)
    recipe.setup()
    assert recipe.model.config.num_hidden_layers == 1
    assert len(recipe.train_features) == 48 + 32 and len(recipe.train_examples) == 48
    texts = [row["text"] for row in train]
    before = (_mean_kl(recipe, texts, teacher_train, 2.0), _mean_kl(recipe, unlabelled, teacher_unlabelled, 2.0))
    recipe.train()
    after = (_mean_kl(recipe, texts, teacher_train, 2.0), _mean_kl(recipe, unlabelled, teacher_unlabelled, 2.0))
    assert after[0] < before[0] / 2 and after[1] < before[1] / 2, (before, after)

    saved = recipe.save(tmp_path / "artifact", snapshot_hash="0" * 64, metrics={})
    assert inference_weights_bytes(saved, registry=registry) == (saved / "model.safetensors").stat().st_size
    speeds, logits = compare_speed({"student": Timed(recipe.model, recipe.tokenizer, 32, 16)}, texts,
                           device=torch.device("cpu"), rounds=2)
    assert speeds["student"]["items"] == 48 and len(speeds["student"]["passes"]) == 2
    assert speeds["student"]["items_per_s"] > 0
    assert np.allclose(logits["student"], class_logits(recipe.model, recipe.tokenizer, texts, max_length=32,
                                                       batch_size=16, device=torch.device("cpu")))


def test_teacher_logits_that_do_not_fit_the_rows_or_labels_are_refused(registry, tmp_path):
    train = sentiment_rows(8, seed=1)
    for targets, message in (
        (TeacherTargets(np.zeros((7, 2), dtype=np.float32)), "scored 7 train texts but the student has 8"),
        (TeacherTargets(np.zeros((8, 3), dtype=np.float32)), "3 columns but the student has 2 labels"),
        (TeacherTargets(np.zeros((8, 2), dtype=np.float32), ["a"], np.zeros((2, 2), dtype=np.float32)),
         "1 unlabelled texts but 2 rows"),
    ):
        recipe = Recipe(classification_spec(), train=train, labels=["pos", "neg"], checkpoint_dir=tmp_path / "ck",
                        registry=registry, teacher=targets)
        with pytest.raises(DataError, match=message):
            recipe.setup()


def test_build_model_refuses_a_student_as_deep_as_its_base(registry):
    spec = classification_spec("full", student_layers=2)
    with pytest.raises(ModelError, match="keep between 1 and 1"):
        build_model(spec, registry.resolve("tiny-bert"), label2id={"pos": 0, "neg": 1})
