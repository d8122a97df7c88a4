"""Tables of ratings: people's ratings of model outputs, blind comparisons and their preferences."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Item, Project
from training.models.runs import ModelOutput, TrainingRun


class Verdict(models.TextChoices):
    CORRECT = "correct", "Correct"
    WRONG = "wrong", "Wrong"


class Rating(models.Model):
    """A person's judgement of one model output: correct / wrong (+ the right label), or 1-5 per criterion
    (+ an optional corrected response)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ratings")
    output = models.ForeignKey(ModelOutput, on_delete=models.PROTECT, related_name="ratings")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="ratings")
    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ratings")
    verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True, help_text="Classification.")
    scores = models.JSONField(default=dict, blank=True, help_text="{criterion: 1-5} for generated responses.")
    correction = models.JSONField(
        null=True, blank=True, help_text='The right value: {"label": ...}, {"labels": [...]} or {"response": ...}.'
    )
    note = models.TextField(blank=True)
    guideline_version = models.ForeignKey(
        "annotation.GuidelineVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="ratings"
    )
    seconds_spent = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["output", "rater", "-created_at"], name="rating_latest"),
            models.Index(fields=["run", "created_at"], name="rating_by_run"),
        ]

    def __str__(self) -> str:
        return f"rating {self.pk} of output {self.output_id} by {self.rater_id}"


class Comparison(models.Model):
    """A blind A/B comparison of two runs' responses to the same prompts, set up by an owner.

    Which run is shown first is decided per (comparison, item, rater) by a keyed hash the page never sees
    (training/ratings.py): the page shows "Response 1" and "Response 2", and the form posts back only a side.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    run_a = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="+")
    run_b = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(run_a=models.F("run_b")), name="comparison_two_runs"),
            models.UniqueConstraint(fields=["run_a", "run_b"], name="comparison_unique_pair"),
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk}: run {self.run_a_id} vs run {self.run_b_id}"


class Preference(models.Model):
    """A rater's A/B choice between two runs' outputs for one prompt. `chosen`/`rejected` are outputs;
    both empty with `tie` set when the rater found them equal. `first` is the output shown first."""

    comparison = models.ForeignKey(Comparison, on_delete=models.PROTECT, related_name="preferences")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="preferences")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="preferences")
    first = models.ForeignKey(ModelOutput, on_delete=models.PROTECT, related_name="+")
    chosen = models.ForeignKey(ModelOutput, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rejected = models.ForeignKey(ModelOutput, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    tie = models.BooleanField(default=False)
    guideline_version = models.ForeignKey(
        "annotation.GuidelineVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="preferences"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(tie=True, chosen__isnull=True, rejected__isnull=True))
                | (Q(tie=False, chosen__isnull=False, rejected__isnull=False)),
                name="preference_choice_or_tie",
            ),
        ]
        indexes = [models.Index(fields=["comparison", "rater", "item"], name="preference_by_rater")]

    def __str__(self) -> str:
        return f"preference {self.pk} in comparison {self.comparison_id}"
