"""RQ jobs: thin entry points that load, claim and call a service. Every one is safe to run twice.

Services enqueue these by dotted path on transaction commit, with deterministic job ids, so this
module may import services without an import cycle.
"""

from __future__ import annotations

from annotation.imports.services import import_run


def import_job_run(job_id: int) -> None:
    """Run import `job_id` ("imports" queue); a second delivery finds it claimed and does nothing."""
    import_run(job_id=job_id)
