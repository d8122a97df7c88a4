"""Tables of projects: the project and its settings, memberships, labels and guideline versions."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from annotation.tasktypes import TaskKind, task_kind


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"


class TaskType(models.TextChoices):
    SINGLE_LABEL = "single_label", "Single-label classification"
    MULTI_LABEL = "multi_label", "Multi-label classification"
    INSTRUCTION = "instruction", "Instruction → response"
    SPANS = "spans", "Span labelling (mark spans of text)"


class GoalMetric(models.TextChoices):
    ACCURACY = "accuracy", "Accuracy"
    MACRO_F1 = "macro_f1", "Macro F1"
    ROUGE_L = "rouge_l", "ROUGE-L"
    BLEU = "bleu", "BLEU"


def default_rating_criteria() -> list[str]:
    return ["correct", "helpful", "follows the guidelines"]


class QueueOrder(models.TextChoices):
    """How the next round orders unlabelled items for annotation, from the latest model's outputs."""

    ENTROPY = "entropy", "Most uncertain first (entropy)"
    MARGIN = "margin", "Smallest margin between the two likeliest labels first"
    RANDOM = "random", "Random order"


class RoutingPolicy(models.TextChoices):
    """Who sees an annotated item next (annotation/review/routing.py)."""

    FIXED = "fixed", "Fixed: disagreements to review"
    ADAPTIVE = "adaptive", "Adaptive: weighted vote within a budget"


# What a new project routes by, and the one-line explanations the create form, the settings page and the API show.
ROUTING_BUDGET_DEFAULT = 2.5
ROUTING_POLICY_HELP = (
    "Adaptive (the default; single-label tasks): every judgement is weighed by its annotator's measured accuracy "
    "(and a model's: the latest run's, or on a noise flag's review the scan's), and a further annotator or a reviewer "
    "is asked only where that vote is in doubt, "
    "within the budget. Fixed (and other task types): every disagreement or unsure answer goes to a reviewer, "
    "whose word is final."
)
AUDIT_RATE_HELP = (
    "Share of agreed items still sent to a reviewer as an audit sample (0 to 1); the noise scan calibrates on "
    "these audits."
)
ROUTING_BUDGET_HELP = (
    "Adaptive routing: the most human judgements (annotations and reviews) per item on average; "
    "2.5 with 2 annotators leaves a further judgement for every other item."
)


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=32, choices=TaskType.choices, default=TaskType.SINGLE_LABEL)
    goal_metric = models.CharField(max_length=32, choices=GoalMetric.choices, default=GoalMetric.MACRO_F1)
    overlap = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="How many distinct annotators label each item, blind to each other.",
    )
    lease_seconds = models.PositiveIntegerField(
        default=900,
        validators=[MinValueValidator(30), MaxValueValidator(24 * 3600)],
        help_text="How long a claimed item stays reserved for its annotator before it returns to the pool.",
    )
    audit_rate = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of agreed items that still go to review as an audit sample.",
    )
    review_all = models.BooleanField(default=False, help_text="Send every annotated item to review.")
    routing_policy = models.CharField(
        max_length=16,
        choices=RoutingPolicy.choices,
        default=RoutingPolicy.ADAPTIVE,
        help_text=(
            "Adaptive (the default for new projects): weighted vote, a further judgement only where it is in doubt, "
            "within routing_budget. Fixed: a disagreement goes to a reviewer whose word is final."
        ),
    )
    routing_budget = models.FloatField(
        default=ROUTING_BUDGET_DEFAULT,
        validators=[MinValueValidator(1.0), MaxValueValidator(20.0)],
        help_text="Adaptive routing: the most human judgements (annotations and reviews) per item on average.",
    )
    allow_overlapping_spans = models.BooleanField(
        default=False,
        help_text="Span projects: let spans overlap (nested entities). Off: an overlapping span is refused.",
    )
    # The next round (training/rounds/): how model outputs feed annotation and review; written by
    # projects.services.project_round_settings_set.
    show_prelabels = models.BooleanField(
        default=False,
        help_text=(
            "Show annotators a pre-label (imported or from the latest model). "
            "Off by default: it biases blind labelling."
        ),
    )
    show_model_confidence = models.BooleanField(
        default=False, help_text="Show raters the model's confidence beside its output."
    )
    rating_criteria = models.JSONField(
        default=default_rating_criteria,
        blank=True,
        help_text="Criteria rated 1-5 for generated responses.",
    )
    queue_order = models.CharField(max_length=16, choices=QueueOrder.choices, default=QueueOrder.ENTROPY)
    random_share = models.FloatField(
        default=0.2,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of the annotation queue kept in random order so the data stays representative.",
    )
    disagreement_confidence = models.FloatField(
        default=0.9,
        validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="A model this confident against an item's final label sends the item back to review.",
    )
    # Item metadata keys (or "length_band") every evaluation reports its figures per value of; written by
    # projects.services.project_set_slice_fields, read by training/runs/runner.py (training/ml/slices.py).
    slice_fields = models.JSONField(
        default=list,
        blank=True,
        help_text="Metadata fields (or length_band) the evaluation reports per slice: bias and fairness checks.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0) & Q(audit_rate__lte=1), name="project_audit_rate_0_1"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def task_kind(self) -> TaskKind:
        """The rules of this project's task type: ask it instead of branching on `task_type`."""
        return task_kind(self.task_type)

    @property
    def routes_adaptively(self) -> bool:
        """Whether adaptive routing is in force: the policy says so and the task has one label per item (the
        weighted vote weighs single labels only; other task types route fixed whatever the setting)."""
        return self.routing_policy == RoutingPolicy.ADAPTIVE and self.task_kind.single_class

    @property
    def routing_in_force(self) -> str:
        """The policy that applies (`routes_adaptively`), as the API and the routing plan report it."""
        return RoutingPolicy.ADAPTIVE if self.routes_adaptively else RoutingPolicy.FIXED

    def value_normalise(self, value: Any, label_names: Collection[str], *, text: str) -> dict[str, Any]:
        """`value` made canonical under this project's rules for an item with `text` (InvalidValue if wrong)."""
        return self.task_kind.normalise(value, label_names, text=text, allow_overlap=self.allow_overlapping_spans)


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.project}"


hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour such as #1f77b4.")


class Label(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#4f6bed", validators=[hex_colour])
    hotkey = models.CharField(max_length=1, blank=True, help_text="One key, 1-9 or a letter.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="label_unique_name"),
            models.UniqueConstraint(
                fields=["project", "hotkey"], condition=~Q(hotkey=""), name="label_unique_hotkey"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class GuidelineVersion(models.Model):
    """One published version of a project's annotation guidelines; never edited after publishing."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guideline_versions")
    version = models.PositiveIntegerField()
    body = models.TextField(help_text="Markdown; rendered with every tag outside a safe list removed.")
    change_note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="guideline_unique_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="guideline_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.project} guidelines v{self.version}"


class GuidelineAcknowledgement(models.Model):
    guideline_version = models.ForeignKey(GuidelineVersion, on_delete=models.CASCADE, related_name="acknowledgements")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    acknowledged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["guideline_version", "user"], name="guideline_ack_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read guideline version {self.guideline_version_id}"


class AccountSetup(models.Model):
    """A user an owner created by API with a one-time password: they must choose their own at first sign-in.

    The password itself is stored only hashed, on the user, like any other; this row keeps the obligation.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_setup")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    must_change_password = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"account setup of user {self.user_id}"
