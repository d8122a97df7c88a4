from django.contrib import admin

from annotation import models


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "task_type", "overlap", "created_by", "created_at", "archived_at"]
    list_filter = ["task_type"]
    search_fields = ["name"]


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role"]
    raw_id_fields = ["project", "user"]


@admin.register(models.Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "hotkey", "color", "position"]
    raw_id_fields = ["project"]


@admin.register(models.GuidelineVersion)
class GuidelineVersionAdmin(admin.ModelAdmin):
    list_display = ["project", "version", "created_by", "created_at"]
    raw_id_fields = ["project", "created_by"]


@admin.register(models.GuidelineAcknowledgement)
class GuidelineAcknowledgementAdmin(admin.ModelAdmin):
    list_display = ["guideline_version", "user", "acknowledged_at"]
    raw_id_fields = ["guideline_version", "user"]


@admin.register(models.ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["file_name", "project", "status", "rows_imported", "duplicates", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["project", "created_by"]


@admin.register(models.Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "submitted_count", "slots_taken", "split_row__split", "priority"]
    list_filter = ["status", "split_row__split"]
    search_fields = ["external_id", "text"]
    raw_id_fields = ["project", "import_job"]
    show_full_result_count = False


@admin.register(models.Claim)
class ClaimAdmin(admin.ModelAdmin):
    list_display = ["item", "annotator", "status", "claimed_at", "lease_expires_at"]
    list_filter = ["status"]
    raw_id_fields = ["item", "project", "annotator"]
    show_full_result_count = False


@admin.register(models.Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["item", "annotator", "status", "unsure", "guideline_version", "created_at"]
    list_filter = ["status", "unsure"]
    raw_id_fields = ["item", "annotator", "guideline_version"]
    show_full_result_count = False


@admin.register(models.Draft)
class DraftAdmin(admin.ModelAdmin):
    list_display = ["item", "annotator", "updated_at"]
    raw_id_fields = ["item", "annotator"]


# --- Review, noise scans and snapshots: append-only rows are shown, never edited here ---


class ReadOnlyAdmin(admin.ModelAdmin):
    """Decisions and snapshots are immutable (database triggers refuse updates): view them only."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["item", "source", "reviewer", "created_at"]
    list_filter = ["source"]
    raw_id_fields = ["item", "reviewer", "guideline_version", "review_task"]
    show_full_result_count = False


@admin.register(models.ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ["item", "project", "status", "reasons", "priority", "created_at", "resolved_at"]
    list_filter = ["status"]
    raw_id_fields = ["project", "item", "resolved_by"]
    show_full_result_count = False


@admin.register(models.NoiseScan)
class NoiseScanAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status"]
    raw_id_fields = ["project", "created_by"]


@admin.register(models.Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ["name", "project", "item_count", "content_hash", "created_by", "created_at"]
    raw_id_fields = ["project", "created_by"]
