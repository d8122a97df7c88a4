"""The scan's second model: the encoder fine-tuned on each fold's complement (a tiny BERT built on the fly)."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.quality import finetune
from tests.fixtures.tiny_models import sentiment_rows


@pytest.mark.slow
def test_every_item_is_predicted_by_a_model_that_never_saw_it_and_the_folds_report_progress(tiny_bert):
    rows = sentiment_rows(60, seed=3)
    truth = np.asarray([row["label"] == "pos" for row in rows], dtype=np.int64)
    given = truth.copy()
    given[:6] = 1 - given[:6]  # six wrong labels to learn around
    started: list[tuple[int, int]] = []
    probs = finetune.out_of_fold_probs(
        [row["text"] for row in rows],
        given,
        folder=tiny_bert,
        n_folds=3,
        seed=0,
        progress=lambda fold, folds: started.append((fold, folds)),
        epochs=4,
        learning_rate=1e-2,
    )
    assert started == [(0, 3), (1, 3), (2, 3)]
    assert probs.shape == (60, 2) and np.allclose(probs.sum(axis=1), 1.0)
    # out of fold, the flipped items get the label their sentiment word gives, not the one they were given
    assert (probs.argmax(axis=1) == truth).mean() >= 0.85
    assert (probs[:6].argmax(axis=1) == truth[:6]).sum() >= 4
    again = finetune.out_of_fold_probs(
        [row["text"] for row in rows], given, folder=tiny_bert, n_folds=3, seed=0, epochs=4, learning_rate=1e-2
    )
    assert np.allclose(probs, again)  # seeded: a scan is reproducible


def test_should_stop_is_asked_before_every_training_step_and_stops_the_fit(tiny_bert):
    rows = sentiment_rows(40, seed=1)
    asked: list[int] = []

    def stop_at_the_third_step() -> bool:
        asked.append(1)
        return len(asked) == 3

    with pytest.raises(finetune.Stopped):
        finetune.out_of_fold_probs(
            [row["text"] for row in rows],
            np.asarray([row["label"] == "pos" for row in rows], dtype=np.int64),
            folder=tiny_bert,
            n_folds=2,
            should_stop=stop_at_the_third_step,
        )
    assert len(asked) == 3  # two steps trained, the third never started


def test_the_learning_rate_warms_up_then_decays_to_zero():
    factor = finetune._warmup_then_decay(100)
    assert factor(0) < factor(5) < factor(9) == 1.0 * (1 - 9 / 100)
    assert factor(50) == 0.5 and factor(100) == 0.0
