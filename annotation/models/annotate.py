"""Tables of the annotate loop: claims, annotations and drafts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models.items import Item
from annotation.models.projects import GuidelineVersion, Project


class ClaimStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Claim(models.Model):
    """An annotator's hold on one overlap slot of an item: at most one per (item, annotator), ever."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="claims")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="claims")
    status = models.CharField(max_length=16, choices=ClaimStatus.choices, default=ClaimStatus.ACTIVE)
    claimed_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="claim_unique_annotator")]
        indexes = [
            models.Index(fields=["annotator", "project", "status"], name="claim_annotator_status"),
            models.Index(
                fields=["project", "lease_expires_at"], condition=Q(status="active"), name="claim_active_lease"
            ),
        ]

    def __str__(self) -> str:
        return f"claim of item {self.item_id} by {self.annotator_id}"


class AnnotationStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    RETRACTED = "retracted", "Retracted by its annotator (undo)"


class Annotation(models.Model):
    """A submitted label. Rows are only ever added; an undo marks a row retracted and keeps it."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    value = models.JSONField(help_text='{"label": ...}, {"labels": [...]} or {"response": ...}')
    unsure = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    guideline_version = models.ForeignKey(
        GuidelineVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations"
    )
    seconds_spent = models.FloatField(default=0.0)
    status = models.CharField(max_length=16, choices=AnnotationStatus.choices, default=AnnotationStatus.SUBMITTED)
    created_at = models.DateTimeField(auto_now_add=True)
    retracted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator"], condition=Q(status="submitted"), name="annotation_once_per_annotator"
            ),
        ]
        indexes = [models.Index(fields=["annotator", "status", "-created_at"], name="annotation_by_annotator")]

    def __str__(self) -> str:
        return f"annotation {self.pk} of item {self.item_id} by {self.annotator_id}"


class Draft(models.Model):
    """Autosaved work in progress: one per (item, annotator), replaced on every save, removed on submit."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="drafts")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    value = models.JSONField(default=dict)
    unsure = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="draft_unique")]

    def __str__(self) -> str:
        return f"draft of item {self.item_id} by {self.annotator_id}"
