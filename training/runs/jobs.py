"""RQ jobs: training runs and prediction batches ("training" queue) and the every-minute runs sweep ("default").

Each job is load → claim → call → finish/fail and safe to deliver twice: the claim is a conditional UPDATE
queued → running, so a second delivery (or a run cancelled while queued) returns without doing anything.
While a job works, a background thread stamps its heartbeat every LABELLOOP_RUN_HEARTBEAT_S; a run whose
heartbeat stops is failed as abandoned by `services.runs_mark_abandoned`.

No ML here, and nothing here imports torch: RQ forks a work horse per job, and the runner and the serving code
(which import torch) are imported inside the job functions, so CUDA is only ever initialised in the horse.
"""

from __future__ import annotations

import os
import socket

from rq import get_current_job

from annotation.imports.services import imports_sweep
from annotation.quality.services import noise_scans_requeue_lost
from core.heartbeat import heartbeat
from training.augment.services import augmentations_requeue_lost
from training.explanations.services import explanations_sweep
from training.runs import services
from training.suggestions.services import suggestion_runs_requeue_lost

__all__ = ["heartbeat", "prediction_batch_job", "runs_sweep_job", "training_run_job", "worker_name"]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def training_run_job(run_id: int) -> None:
    """Train run `run_id`; the run's row records how it ended (succeeded, cancelled or failed)."""
    run = services.run_claim(run_id=run_id, worker=worker_name())
    if run is None:
        return
    with heartbeat(lambda: services.run_heartbeat(run_id=run_id)):
        try:
            from training.runs import runner
        except Exception as exc:
            services.run_fail(run=run, error=f"the training code could not be loaded: {exc!r}")
            raise
        try:
            result = runner.train(run)
        except runner.EXPECTED_ERRORS as exc:
            services.run_fail(run=run, error=str(exc))
            return
        except Exception as exc:
            services.run_fail(run=run, error=f"unexpected error: {exc!r}")
            raise
    services.run_finish(
        run=run,
        status=result.status,
        metrics=result.metrics,
        progress=result.progress,
        artifact_dir=result.artifact_dir,
        message=result.message,
    )


def prediction_batch_job(batch_id: int) -> None:
    """Predict every item of batch `batch_id` that has no output of its run yet."""
    batch = services.prediction_batch_claim(batch_id=batch_id)
    if batch is None:
        return
    with heartbeat(lambda: services.prediction_batch_heartbeat(batch_id=batch_id)):
        try:
            from training.runs import serving

            serving.predict_batch(batch)
        except Exception as exc:
            services.prediction_batch_fail(batch=batch, error=f"{exc}")
            raise
    services.prediction_batch_finish(batch=batch)


def runs_sweep_job() -> None:
    """Schedule the next sweep first (so a failing sweep still comes back), then fail runs and imports with a stale
    heartbeat (and explanations running past their timeout) and give queued runs, prediction batches, noise scans,
    explanations, augmentations, suggestion runs and pending imports whose job was lost their job again."""
    current = get_current_job()
    services.runs_sweep_schedule(after=current.id if current is not None else services.SWEEP_JOB_IDS[1])
    services.runs_mark_abandoned()
    services.runs_requeue_lost()
    services.prediction_batches_requeue_lost()
    noise_scans_requeue_lost()
    explanations_sweep()
    augmentations_requeue_lost()
    suggestion_runs_requeue_lost()
    imports_sweep()
