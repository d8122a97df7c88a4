"""RQ job of an augmentation: load → claim → call → finish or fail (no ML here; see training/ml/augment.py).

Safe to deliver twice: only the delivery that moves the row from queued to running does the work.
"""

from __future__ import annotations

from training.augment import services
from training.ml.augment import AugmentError
from training.ml.registry import RegistryError


def augmentation_job(augmentation_id: int) -> None:
    augmentation = services.augmentation_claim(augmentation_id=augmentation_id)
    if augmentation is None:
        return
    try:
        services.augmentation_execute(augmentation=augmentation)
    except (AugmentError, RegistryError) as exc:
        services.augmentation_fail(augmentation=augmentation, message=str(exc))
    except Exception as exc:
        services.augmentation_fail(augmentation=augmentation, message=services.UNEXPECTED.format(error=exc))
        raise
