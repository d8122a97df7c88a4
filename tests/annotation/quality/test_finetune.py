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

    def fold_starts(fold: int, folds: int, step: int, steps: int) -> None:
        if step == 0:
            started.append((fold, folds))

    probs = finetune.out_of_fold_probs(
        [row["text"] for row in rows],
        given,
        folder=tiny_bert,
        n_folds=3,
        seed=0,
        progress=fold_starts,
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


class Cancelled(Exception):
    pass


def test_progress_hears_every_training_step_and_an_exception_there_stops_the_fit(tiny_bert):
    rows = sentiment_rows(40, seed=1)
    heard: list[tuple[int, int, int, int]] = []

    def stop_at_the_third_step(fold: int, folds: int, step: int, steps: int) -> None:
        heard.append((fold, folds, step, steps))
        if len(heard) == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        finetune.out_of_fold_probs(
            [row["text"] for row in rows],
            np.asarray([row["label"] == "pos" for row in rows], dtype=np.int64),
            folder=tiny_bert,
            n_folds=2,
            progress=stop_at_the_third_step,
        )
    # 20 training rows a fold: one batch an epoch, 4 epochs; two steps trained, the third never started
    assert heard == [(0, 2, 0, 4), (0, 2, 1, 4), (0, 2, 2, 4)]


def test_the_learning_rate_warms_up_then_decays_to_zero():
    factor = finetune._warmup_then_decay(100)
    assert factor(0) < factor(5) < factor(9) == 1.0 * (1 - 9 / 100)
    assert factor(50) == 0.5 and factor(100) == 0.0


def test_the_time_left_reads_as_a_person_would_say_it():
    from core import durations

    said = [durations.rough(s) for s in (3, 44, 85, 91, 750, 3570, 3900)]
    assert said == ["10 s", "40 s", "90 s", "2 min", "13 min", "1 h", "1 h 5 min"]
    assert durations.left(600) == "about 10 min left" and durations.left(None) == ""
    assert [durations.exact(s) for s in (12, 200, 3900, None, -1)] == ["12 s", "3 min 20 s", "1 h 05 min", "", ""]
