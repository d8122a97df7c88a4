"""Explanations on tiny models: integrated gradients keep their completeness promise and rank the deciding word
first; word pieces merge back into the text's words; response log-probabilities agree with the model's loss."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from tests.fixtures.tiny_models import causal_lm_spec, qa_rows
from training.ml.explain import integrated_gradients, merge_words, response_logprobs, segments
from training.ml.predict import Predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DECIDER, PAD = 7, 0


class OneWordDecides(nn.Module):
    """Embeddings of size 2; the classifier reads only the first dimension, which only token DECIDER has."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 2)
        with torch.no_grad():
            self.embed.weight.zero_()
            self.embed.weight[:, 1] = torch.linspace(-1, 1, 10)  # every token has something, unread
            self.embed.weight[DECIDER, 0] = 3.0
            self.embed.weight[PAD] = 0.0
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
            self.head.bias.zero_()

    def get_input_embeddings(self) -> nn.Module:
        return self.embed

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        embeds = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        return SimpleNamespace(logits=self.head(torch.tanh(embeds.sum(dim=1))))


def test_the_one_token_that_decides_the_class_gets_all_the_attribution():
    model = OneWordDecides()
    ids = torch.tensor([[3, 5, DECIDER, 2, 9]])
    result = integrated_gradients(
        model, ids, extra={}, baseline_ids=torch.full_like(ids, PAD), steps=64
    )
    scores = result["attributions"]
    assert result["target"] == 0
    assert max(range(len(scores)), key=lambda i: abs(scores[i])) == 2
    assert scores[2] > 1.9
    assert all(abs(score) < 1e-6 for i, score in enumerate(scores) if i != 2)
    # Completeness: the attributions add up to log-odds(x) − log-odds(baseline), and the baseline's is 0 (p = ½).
    assert result["f_baseline"] == pytest.approx(0.0, abs=1e-6)
    assert result["f_input"] == pytest.approx(2 * math.tanh(3.0), abs=1e-5)
    assert sum(scores) == pytest.approx(result["f_input"], abs=5e-3)
    assert abs(result["delta"]) < 5e-3


def test_completeness_holds_on_a_trained_tiny_bert_with_lora(tiny_artifact):
    """The tiny model's log-odds go from about −3 at the baseline to +3 at a positive text; the steps double until
    the attributions add up to that gap within tolerance."""
    predictor = Predictor.load(tiny_artifact, device=torch.device("cpu"))
    text = "the acting was really great and the plot was lovely"
    result = predictor.explain(text)
    gap = result["log_odds"] - result["baseline_log_odds"]
    assert abs(gap) > 1.0, "the text should move the model well away from the baseline"
    assert result["converged"] is True
    assert result["attribution_sum"] == pytest.approx(gap, abs=0.05 + 0.05 * abs(gap))
    assert result["delta"] == pytest.approx(result["attribution_sum"] - gap)
    assert result["steps"] in (32, 64, 128, 256, 512)
    # The label and its probability are the prediction's own.
    (classification,) = predictor.classify([text])
    assert result["label"] == classification.label
    assert result["probability"] == pytest.approx(classification.confidence, abs=1e-5)
    # The segments give the text back exactly, and every word of it is scored.
    assert "".join(segment["text"] for segment in result["segments"]) == text
    words = [segment["text"] for segment in result["segments"] if segment["score"] is not None]
    assert words == text.split()
    assert result["truncated"] is False


def test_delta_exposes_too_few_steps_on_a_sharp_model():
    """A model whose output turns sharply along the path: 4 steps miss the turn (a large delta, which the result
    reports), 256 steps add up."""
    model = OneWordDecides()
    with torch.no_grad():
        model.embed.weight[DECIDER, 0] = 30.0  # tanh(30·α): the output turns within the first few % of the path
    ids = torch.tensor([[3, DECIDER, 2]])
    kwargs = dict(extra={}, baseline_ids=torch.full_like(ids, PAD))
    coarse = integrated_gradients(model, ids, steps=4, **kwargs)
    fine = integrated_gradients(model, ids, steps=256, **kwargs)
    assert abs(coarse["delta"]) > 1.0
    assert abs(fine["delta"]) < 0.05 * abs(fine["f_input"] - fine["f_baseline"])


def test_the_sentiment_word_ranks_first_on_the_trained_tiny_model(tiny_artifact):
    predictor = Predictor.load(tiny_artifact, device=torch.device("cpu"))
    hits = 0
    # Positive texts: the padding-only baseline is already "neg" on this model, so a negative text moves nothing.
    cases = [("the movie was great today", "great"), ("the film was excellent", "excellent"),
             ("really lovely acting", "lovely"), ("the plot was happy today", "happy")]
    for text, word in cases:
        result = predictor.explain(text)
        assert result["label"] == "pos"
        scored = [s for s in result["segments"] if s["score"] is not None]
        top = max(scored, key=lambda s: abs(s["score"]))
        hits += top["text"] == word
    assert hits >= 3, f"the sentiment word ranked first in only {hits} of {len(cases)} texts"


def test_a_long_text_is_cut_where_the_model_cuts_it_and_says_so(tiny_artifact):
    predictor = Predictor.load(tiny_artifact, device=torch.device("cpu"))
    text = " ".join(["the movie was great"] * 40)
    result = predictor.explain(text, steps=8, max_steps=8)
    assert result["truncated"] is True
    assert result["tokens_used"] == predictor.max_length < result["tokens_total"]
    assert 0 < result["explained_chars"] < len(text)
    assert "".join(segment["text"] for segment in result["segments"]) == text[: result["explained_chars"]]


def test_word_pieces_merge_into_words_and_gaps_stay_unscored():
    offsets = [(0, 0), (0, 3), (3, 6), (7, 9), (0, 0)]
    word_ids = [None, 0, 0, 1, None]
    words = merge_words(offsets, word_ids, [0.0, 0.25, 0.5, -0.25, 0.0])
    assert words == [(0, 6, 0.75), (7, 9, -0.25)]
    parts = segments(11, words, upto=11)
    assert [(p.start, p.end, p.score) for p in parts] == [(0, 6, 0.75), (6, 7, None), (7, 9, -0.25), (9, 11, None)]


def test_response_logprobs_add_up_to_the_models_own_likelihood(registry, tmp_path):
    from training.ml.recipe import Recipe

    recipe = Recipe(causal_lm_spec(epochs=1), train=qa_rows(16, seed=1), checkpoint_dir=tmp_path / "ck",
                    registry=registry)
    recipe.setup()
    recipe.train()
    predictor = Predictor.load(recipe.save(tmp_path / "artifact", snapshot_hash="0" * 64, metrics={}),
                               registry=registry, device=torch.device("cpu"))
    prompt, response = "what colour is the sky", "the sky is blue"
    result = predictor.logprobs(prompt, response)
    assert "".join(token["text"] for token in result["tokens"]) == response
    assert all(token["logprob"] <= 0 and 0 < token["p"] <= 1 for token in result["tokens"])
    # Independently: the model's mean cross-entropy over the response tokens is minus the mean log-probability.
    tokenizer, model = predictor.tokenizer, predictor.model
    from training.ml.data import chat_prompt_ids

    prompt_ids = chat_prompt_ids(tokenizer, prompt)
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + response_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + response_ids])
    with torch.no_grad():
        loss = float(model(input_ids=ids, labels=labels).loss)
    assert result["mean_logprob"] == pytest.approx(-loss, abs=1e-4)
    direct = response_logprobs(model, tokenizer, prompt, response, max_length=4, device=torch.device("cpu"))
    assert direct["prompt_tokens_cut"] == len(prompt_ids) - 4
