"""RQ job of the "quality" queue: a suggestion run is load → claim → call → finish or fail.

No ML here (training/suggestions/services.py imports it when the job runs). Safe to deliver twice: only the
delivery that moves the run from queued to running does the work.
"""

from __future__ import annotations

from core.errors import ServiceError
from training.ml.registry import RegistryError
from training.suggestions import services


def suggestion_run_job(run_id: int) -> None:
    run = services.suggestion_run_claim(run_id=run_id)
    if run is None:
        return
    try:
        services.suggestion_run_execute(run=run)
    except (ServiceError, RegistryError) as exc:
        services.suggestion_run_fail(run=run, message=getattr(exc, "message", str(exc)))
    except Exception as exc:
        services.suggestion_run_fail(run=run, message=f"The run stopped on an unexpected error: {exc}")
        raise
