"""The training tables (runs, ratings, rounds, suggestions), one module per sub-area, re-exported here.
"""

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
    "Comparison",
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
