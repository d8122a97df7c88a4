"""Admin: runs, their events, prediction batches, outputs and explanations are read-only; the services change them."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from training.models import (
    Comparison,
    Explanation,
    ModelOutput,
    PredictionBatch,
    Preference,
    Rating,
    Round,
    RoundChange,
    RunEvent,
    TrainingRun,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "project", "task", "base_model", "status", "created_by", "created_at", "finished_at"]
    list_filter = ["status", "task"]
    search_fields = ["name", "base_model", "snapshot_hash"]
    raw_id_fields = ["snapshot", "resumed_from"]


@admin.register(RunEvent)
class RunEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "kind", "step", "created_at"]
    list_filter = ["kind"]


@admin.register(PredictionBatch)
class PredictionBatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "scope", "status", "done", "total", "written", "created_at"]
    list_filter = ["status", "scope"]


@admin.register(ModelOutput)
class ModelOutputAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "item", "confidence", "uncertainty", "created_at"]
    raw_id_fields = ["run", "item"]


@admin.register(Explanation)
class ExplanationAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "item", "method", "status", "requested_by", "created_at", "finished_at"]
    list_filter = ["status", "method"]
    raw_id_fields = ["run", "item"]


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "run", "item", "rater", "verdict", "created_at"]
    list_filter = ["verdict"]
    raw_id_fields = ["output", "item", "run"]


@admin.register(Comparison)
class ComparisonAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "run_a", "run_b", "created_by", "created_at"]


@admin.register(Preference)
class PreferenceAdmin(ReadOnlyAdmin):
    list_display = ["id", "comparison", "item", "rater", "tie", "created_at"]
    raw_id_fields = ["item", "first", "chosen", "rejected"]


@admin.register(Round)
class RoundAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "number", "guideline_version", "snapshot", "started_at", "closed_at", "closed_by"]
    raw_id_fields = ["snapshot"]


@admin.register(RoundChange)
class RoundChangeAdmin(ReadOnlyAdmin):
    list_display = ["id", "round", "item", "kind", "rating", "output", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["round", "item", "rating", "output"]
