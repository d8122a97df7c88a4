"""RQ job of the "quality" queue (the "training" queue for a scan that fine-tunes the encoder): a noise scan is
load → claim → call → finish, fail, or stop where it was cancelled.

No ML here (that is annotation/noise.py behind services/quality.py). Safe to deliver twice: only the
delivery that moves the scan from queued to running does the work.
"""

from __future__ import annotations

from annotation.quality import services as quality
from annotation.quality.noise import NoiseScanError


def noise_scan_job(scan_id: int) -> None:
    scan = quality.noise_scan_claim(scan_id=scan_id)
    if scan is None:
        return
    try:
        quality.noise_scan_execute(scan=scan)
    except quality.ScanStopped:
        return  # cancelled (or declared abandoned) while it ran: its row already says so
    except NoiseScanError as exc:
        quality.noise_scan_fail(scan=scan, message=str(exc))  # expected: too little data, one class only, ...
    except Exception as exc:
        quality.noise_scan_fail(scan=scan, message=f"The scan stopped on an unexpected error: {exc}")
        raise
