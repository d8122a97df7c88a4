"""The annotation tables, one module per sub-area, re-exported here: `from annotation.models import Item`.

Invariants live in the database wherever it can hold them (unique and check constraints, partial
indexes); each sub-area's services are the only code that writes its tables.
"""

from .annotate import Annotation, AnnotationStatus, Claim, ClaimStatus, Draft
from .datasets import ItemSplit, Snapshot, SnapshotItem, Split
from .imports import ImportJob, ImportStatus, LabelsAs
from .items import Item, ItemStatus
from .projects import (
    AUDIT_RATE_HELP,
    ROUTING_BUDGET_DEFAULT,
    ROUTING_BUDGET_HELP,
    ROUTING_POLICY_HELP,
    AccountSetup,
    GoalMetric,
    GuidelineAcknowledgement,
    GuidelineVersion,
    Label,
    Membership,
    Project,
    QueueOrder,
    Role,
    RoutingPolicy,
    TaskType,
    default_rating_criteria,
    hex_colour,
)
from .quality import ItemEmbedding, NoiseFlag, NoiseScan, ScanStatus
from .review import Decision, DecisionSource, ReviewReason, ReviewStatus, ReviewTask
from .webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "AUDIT_RATE_HELP",
    "ROUTING_BUDGET_DEFAULT",
    "ROUTING_BUDGET_HELP",
    "ROUTING_POLICY_HELP",
    "AccountSetup",
    "Annotation",
    "AnnotationStatus",
    "Claim",
    "ClaimStatus",
    "Decision",
    "DecisionSource",
    "DeliveryStatus",
    "Draft",
    "GoalMetric",
    "GuidelineAcknowledgement",
    "GuidelineVersion",
    "ImportJob",
    "ImportStatus",
    "Item",
    "ItemEmbedding",
    "ItemSplit",
    "ItemStatus",
    "Label",
    "LabelsAs",
    "Membership",
    "NoiseFlag",
    "NoiseScan",
    "Project",
    "QueueOrder",
    "ReviewReason",
    "ReviewStatus",
    "ReviewTask",
    "Role",
    "RoutingPolicy",
    "ScanStatus",
    "Snapshot",
    "SnapshotItem",
    "Split",
    "TaskType",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "default_rating_criteria",
    "hex_colour",
]
