"""Progress of the phases after training (evaluating, predicting): items done of a total known up front, and an
ETA from the phase's own rate.

The training loop reports its own ETA from its steps. Once it ends, the test evaluation (the model, then the
baselines' embeddings) or a generation pass can run for minutes at a rate that has nothing to do with a training
step's, so the training ETA must not carry over ("ETA 0 s" for minutes). A `PhaseProgress` is made per phase with
the number of items it will process; the batched inference functions call `advance(n)` after each batch of n
items, and `report` receives the figures (throttling database writes is the caller's business). No torch, no
Django: the recipe, the runner and the tests all use it as is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

BatchCallback = Callable[[int], None]


class PhaseProgress:
    """Items done of `total` in one phase; ETA = time so far / items so far x items left (None before the first)."""

    def __init__(
        self,
        phase: str,
        total: int,
        *,
        report: Callable[[dict[str, Any]], None] | None = None,
        unit: str = "items",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.phase = phase
        self.total = max(int(total), 0)
        self.unit = unit
        self.done = 0
        self._report = report
        self._clock = clock
        self._started = clock()

    def advance(self, count: int = 1) -> None:
        """`count` more items are done (never past the total: an uncounted extra batch cannot overshoot the bar)."""
        self.done = min(self.done + max(int(count), 0), self.total)
        if self._report is not None:
            self._report(self.figures())

    def figures(self) -> dict[str, Any]:
        elapsed = self._clock() - self._started
        eta = elapsed / self.done * (self.total - self.done) if self.done and elapsed > 0 else None
        return {
            "phase": self.phase,
            "phase_done": self.done,
            "phase_total": self.total,
            "phase_unit": self.unit,
            "phase_elapsed_s": round(elapsed, 2),
            "phase_eta_s": None if eta is None else round(eta, 1),
            "phase_rate": round(self.done / elapsed, 3) if self.done and elapsed > 0 else None,
        }


def counted(progress: PhaseProgress | None) -> BatchCallback | None:
    """The per-batch callback that advances `progress`, or None when nobody follows this pass."""
    return progress.advance if progress is not None else None
