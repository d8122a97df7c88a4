"""The constrained-choice scorer (training/ml/prelabel.py) on the tiny Llama: what it computes with its shared-prefix
cache is the log-likelihood of each label's tokens and the end of the turn after the chat-formatted prompt, the same
as one plain forward pass over that whole sequence gives; its distribution is over the labels only, so it always
yields one of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.ml import prelabel
from training.ml.data import chat_prompt_ids
from training.ml.modeling import load_base_model, load_tokenizer
from training.spec import TASK_CAUSAL_LM

LABELS = ["good", "bad", "the sky is blue"]  # one-token and many-token names: padding must not leak in


@pytest.fixture(scope="module")
def llama(tiny_llama):
    tokenizer = load_tokenizer(tiny_llama, task=TASK_CAUSAL_LM)
    model, _ = load_base_model(tiny_llama, task=TASK_CAUSAL_LM)
    return model.eval(), tokenizer


def reference(model, tokenizer, prompt: str, label: str) -> float:
    """One label, alone in its batch: sum of log p(token | everything before it) over the label and end of turn."""
    prompt_ids = chat_prompt_ids(tokenizer, prompt)
    answer = tokenizer(label, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = torch.tensor([prompt_ids + answer])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return sum(float(log_probs[len(prompt_ids) - 1 + k, token]) for k, token in enumerate(answer))


def test_scores_are_each_labels_own_log_likelihood_and_the_choice_is_among_the_labels(llama):
    model, tokenizer = llama
    texts = ["the movie was good", "what colour is the sky", "bad"]
    shared = prelabel.instructions(labels=LABELS, guidelines="Pick the mood.")
    seen: list[int] = []
    scores = prelabel.label_log_likelihoods(
        model, tokenizer, texts, LABELS, shared=shared, device=torch.device("cpu"), on_item=seen.append
    )
    assert scores.shape == (3, 3) and seen == [1, 1, 1]
    for row, text in enumerate(texts):
        prompt = prelabel.classification_prompt(text, labels=LABELS, guidelines="Pick the mood.")
        head, tail = prelabel.split_prompt_ids(tokenizer, shared, prelabel.item_text(text))
        assert head + tail == chat_prompt_ids(tokenizer, prompt)  # the cut changes no token
        for column, label in enumerate(LABELS):
            assert scores[row, column] == pytest.approx(reference(model, tokenizer, prompt, label), abs=1e-4)
    probabilities = prelabel.choice_probabilities(scores)
    assert np.allclose(probabilities.sum(axis=1), 1.0) and (probabilities > 0).all()
    assert (probabilities.argmax(axis=1) == scores.argmax(axis=1)).all()


def test_one_label_is_not_a_choice(llama):
    model, tokenizer = llama
    with pytest.raises(ValueError, match="at least two label names"):
        prelabel.label_log_likelihoods(model, tokenizer, ["x"], ["good"], shared="Text:", device=torch.device("cpu"))


def test_the_prompt_holds_the_guidelines_the_examples_and_the_text():
    shots = [prelabel.Shot(text="so lovely", label="good"), prelabel.Shot(text="awful", label="bad")]
    prompt = prelabel.classification_prompt(
        "a sad film", labels=["good", "bad"], guidelines="# Mood\nBe fair.", shots=shots
    )
    assert prompt.startswith("Classify the text with exactly one of these labels: good, bad. Answer with the label")
    assert "Guidelines:\n# Mood Be fair." in prompt
    first, second = prompt.index("Text: so lovely\nLabel: good"), prompt.index("Text: awful\nLabel: bad")
    assert first < second < prompt.index("a sad film")
    assert prelabel.classification_prompt("z" * 5000, labels=["a", "b"], guidelines="").count("z") == 999  # clipped


def test_figures_have_intervals_around_the_point_estimate():
    y_true = np.array([0, 0, 1, 1, 1, 0, 1, 0, 1, 1])
    probabilities = np.eye(2)[np.array([0, 0, 1, 0, 1, 0, 1, 1, 1, 1])]
    out = prelabel.figures(y_true, probabilities, 2)
    assert out["n"] == 10 and out["accuracy"] == pytest.approx(0.8)
    low, high = out["accuracy_ci"]
    assert low <= 0.8 <= high and high - low > 0.1  # ten items: a wide interval, honestly
