"""The training tables (runs, augmentations, ratings, rounds, suggestions), one module per sub-area, re-exported
here.
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
from .suggestions import Suggestion, SuggestionMethod, SuggestionRun, SuggestionRunStatus

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
    "Suggestion",
    "SuggestionMethod",
    "SuggestionRun",
    "SuggestionRunStatus",
    "TrainingRun",
    "Verdict",
]
