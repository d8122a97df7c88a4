"""Tables of pre-labelling: a run of an untuned model over unlabelled items, and the suggestions it made.

A suggestion is never a label: it is not an annotation, a decision or a snapshot row, so final labels, agreement
and snapshots never see it. It reaches annotators only when the owner turns on "show as pre-labels" (it is then
copied into `Item.prelabel`, shown under `Project.show_prelabels`), and the queue only under "use for ordering".
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import GuidelineVersion, Item, Project


class SuggestionMethod(models.TextChoices):
    EMBEDDING_ZERO_SHOT = "embedding_zero_shot", "Embedding nearest label (zero-shot: label names + guidelines)"
    EMBEDDING_K_SHOT = "embedding_k_shot", "Embedding nearest centroid of k approved items per label (k-shot)"
    LLM_ZERO_SHOT = "llm_zero_shot", "SmolLM2 zero-shot (label names + guideline text, constrained choice)"
    LLM_FEW_SHOT = "llm_few_shot", "SmolLM2 few-shot (approved examples in the prompt, constrained choice)"
    LLM_RESPONSE = "llm_response", "SmolLM2 draft responses (instruction projects, untuned model)"


class SuggestionRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SuggestionRun(models.Model):
    """One pre-labelling job; its row, not Redis, is the truth about its status. Its provenance (method, model,
    guideline version, few-shot example ids) is every one of its suggestions' provenance."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="suggestion_runs")
    method = models.CharField(max_length=32, choices=SuggestionMethod.choices)
    model_name = models.CharField(max_length=200, blank=True, help_text="The model that scored, as it is known.")
    guideline_version = models.ForeignKey(
        GuidelineVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    shot_item_ids = models.JSONField(default=list, blank=True, help_text="Approved items used as examples.")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=SuggestionRunStatus.choices, default=SuggestionRunStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    message = models.CharField(max_length=1000, blank=True)
    eta_seconds = models.PositiveIntegerField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="Counts and accuracy on labelled items.")
    used_for_ordering = models.BooleanField(default=False)
    shown_as_prelabels = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(status__in=["queued", "running"]), name="suggestion_run_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"suggestion run {self.pk} of {self.project} ({self.method}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (SuggestionRunStatus.QUEUED, SuggestionRunStatus.RUNNING)


class Suggestion(models.Model):
    """A model's suggested value for one unlabelled item; its provenance is its run's."""

    run = models.ForeignKey(SuggestionRun, on_delete=models.CASCADE, related_name="suggestions")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="suggestions")
    value = models.JSONField(help_text='The suggested value, as an annotation stores it: {"label": ...}.')
    score = models.FloatField(null=True, blank=True, help_text="Probability of the suggested label.")
    probabilities = models.JSONField(null=True, blank=True, help_text="Label → probability (classification).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "item"]
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="suggestion_one_per_item_and_run")]

    def __str__(self) -> str:
        return f"suggestion {self.value} for item {self.item_id} (run {self.run_id})"
