"""The training tables (runs, augmentations, ratings, rounds), one module per sub-area, re-exported here.
"""

from .augment import Augmentation, AugmentationStatus
from .explanations import Explanation, ExplanationStatus
from .ratings import Comparison, Preference, Rating, Verdict
from .rounds import Round, RoundChange
from .runs import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    ModelOutput,
    PredictionBatch,
    PredictionScope,
    PredictionStatus,
    RunEvent,
    RunStatus,
    TrainingRun,
)

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "Augmentation",
    "AugmentationStatus",
    "Comparison",
    "Explanation",
    "ExplanationStatus",
    "ModelOutput",
    "PredictionBatch",
    "PredictionScope",
    "PredictionStatus",
    "Preference",
    "Rating",
    "Round",
    "RoundChange",
    "RunEvent",
    "RunStatus",
    "TrainingRun",
    "Verdict",
]
