"""The progress of a phase after training: items done of total, and an ETA from the phase's own rate."""

from __future__ import annotations

from training.ml.progress import PhaseProgress, counted


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_eta_comes_from_the_phases_own_rate_and_is_unknown_before_the_first_batch():
    clock, reports = Clock(), []
    progress = PhaseProgress("evaluating", 100, report=reports.append, clock=clock)
    first = progress.figures()
    assert first["phase_done"] == 0 and first["phase_total"] == 100
    assert first["phase_eta_s"] is None, "no rate yet: unknown, never 0 s"
    clock.now += 5.0
    progress.advance(10)  # 10 items in 5 s: 2 items/s, 90 left
    assert reports[-1]["phase_eta_s"] == 45.0 and reports[-1]["phase_rate"] == 2.0
    assert reports[-1]["phase"] == "evaluating" and reports[-1]["phase_unit"] == "items"
    clock.now += 35.0
    progress.advance(40)  # 50 in 40 s: 1.25 items/s, 50 left
    assert reports[-1]["phase_done"] == 50 and reports[-1]["phase_eta_s"] == 40.0
    clock.now += 40.0
    progress.advance(50)
    assert reports[-1]["phase_done"] == 100 and reports[-1]["phase_eta_s"] == 0.0


def test_an_uncounted_extra_batch_never_overshoots_the_total():
    progress = PhaseProgress("predicting", 8, clock=Clock())
    progress.advance(6)
    progress.advance(6)
    assert progress.done == 8 and progress.figures()["phase_done"] == 8


def test_counted_gives_the_batch_callback_or_none():
    progress = PhaseProgress("evaluating", 3, clock=Clock())
    callback = counted(progress)
    assert callback is not None
    callback(2)
    assert progress.done == 2
    assert counted(None) is None
