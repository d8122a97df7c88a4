"""The options of a round's plan: parsed from a form or a query string, checked, named by field on error."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from annotation.models import Project, QueueOrder
from annotation.projects.services import BAD_CONFIDENCE, BAD_QUEUE_ORDER, BAD_SHARE
from core.errors import ServiceError

__all__ = [
    "BAD_CONFIDENCE",
    "BAD_EXAMPLES",
    "BAD_MIN_RATING",
    "BAD_QUEUE_ORDER",
    "BAD_SHARE",
    "NO_SUCH_RUN",
    "PlanOptions",
    "plan_options_default",
    "plan_options_parse",
]

EXAMPLES = 10


MAX_EXAMPLES = 100


DEFAULT_MIN_RATING = 4


NO_SUCH_RUN = "No succeeded run with this id in the project."


BAD_MIN_RATING = "min_rating must be a whole number from 1 to 5."


BAD_EXAMPLES = f"examples must be a whole number from 0 to {MAX_EXAMPLES}."


@dataclass(frozen=True)
class PlanOptions:
    """What the owner chooses on the plan page; `run_id` None means the project's latest succeeded run."""

    run_id: int | None = None
    queue_order: str = QueueOrder.ENTROPY
    random_share: float = 0.2
    prelabels: bool = False
    disagreement_confidence: float = 0.9
    min_rating: int = DEFAULT_MIN_RATING
    examples: int = EXAMPLES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_options_default(*, project: Project) -> PlanOptions:
    """The project's own settings: what the plan page starts from."""
    return PlanOptions(
        queue_order=project.queue_order,
        random_share=project.random_share,
        prelabels=project.show_prelabels,
        disagreement_confidence=project.disagreement_confidence,
    )


def _number(raw: Any, *, field: str, message: str, low: float, high: float, whole: bool = False) -> float:
    try:
        value = int(str(raw).strip()) if whole else float(str(raw).strip())
    except (TypeError, ValueError):
        raise ServiceError(message, field=field) from None
    if not (low <= value <= high) or (not whole and math.isnan(value)):
        raise ServiceError(message, field=field)
    return value


def _flag(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    return str(raw).strip().lower() in ("1", "true", "on", "yes")


def plan_options_parse(*, project: Project, data: Mapping[str, Any]) -> PlanOptions:
    """Options from a form or a query string; a missing one keeps the project's setting. Raises naming the field."""
    default = plan_options_default(project=project)
    run_raw = data.get("run")
    run_id = None
    if run_raw not in (None, ""):
        run_id = int(_number(run_raw, field="run", message=NO_SUCH_RUN, low=1, high=2**62, whole=True))
    order = data.get("queue_order") or default.queue_order
    if order not in QueueOrder.values:
        raise ServiceError(BAD_QUEUE_ORDER.format(choices=", ".join(QueueOrder.values)), field="queue_order")

    def pick(key: str, fallback: Any) -> Any:
        value = data.get(key)
        return fallback if value in (None, "") else value

    return PlanOptions(
        run_id=run_id,
        queue_order=order,
        random_share=_number(
            pick("random_share", default.random_share), field="random_share", message=BAD_SHARE, low=0.0, high=1.0
        ),
        prelabels=_flag(data["prelabels"]) if "prelabels" in data else default.prelabels,
        disagreement_confidence=_number(
            pick("disagreement_confidence", default.disagreement_confidence),
            field="disagreement_confidence",
            message=BAD_CONFIDENCE,
            low=0.5,
            high=1.0,
        ),
        min_rating=int(
            _number(
                pick("min_rating", DEFAULT_MIN_RATING),
                field="min_rating",
                message=BAD_MIN_RATING,
                low=1,
                high=5,
                whole=True,
            )
        ),
        examples=int(
            _number(
                pick("examples", EXAMPLES), field="examples", message=BAD_EXAMPLES, low=0, high=MAX_EXAMPLES, whole=True
            )
        ),
    )
