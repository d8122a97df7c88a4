"""REST API of augmentation: a snapshot's augmentations (list, start) and one augmentation (read)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.datasets.selectors import snapshot_get
from annotation.permissions import MANAGE, REVIEW, access_project
from core.api import DENIED, PAGE_PARAMETERS, REFUSED, SEED_MAX, ApiView, paginated, validated
from training.augment import selectors, services
from training.ml.augment import METHODS

NO_SUCH_SNAPSHOT = "No such snapshot."
NO_SUCH_AUGMENTATION = "No such augmentation."


class AugmentationSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    snapshot_id = serializers.IntegerField()
    snapshot_hash = serializers.CharField()
    options = serializers.JSONField(help_text="methods, per_row, seed, max_paraphrases.")
    status = serializers.CharField()
    progress = serializers.FloatField()
    message = serializers.CharField()
    content_hash = serializers.CharField(help_text="sha256 of the augmented rows' JSONL; empty until it succeeds.")
    row_count = serializers.IntegerField()
    report = serializers.JSONField(help_text="Rows made and skipped per method, models used.")
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class AugmentationListApi(ApiView):
    """Owners and reviewers: a snapshot's augmentations, newest first; the owner starts one."""

    class InputSerializer(serializers.Serializer):
        methods = serializers.ListField(
            child=serializers.ChoiceField(choices=METHODS), min_length=1,
            help_text="random_edits, synonyms, paraphrase; back_translation is refused (no translation model).",
        )
        per_row = serializers.IntegerField(required=False, default=1, min_value=1, max_value=services.PER_ROW_MAX)
        seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=SEED_MAX)
        max_paraphrases = serializers.IntegerField(
            required=False, default=services.MAX_PARAPHRASES_DEFAULT, min_value=1,
            max_value=services.MAX_PARAPHRASES_LIMIT, help_text="At most this many train rows are paraphrased.",
        )

    def _snapshot(self, project_id: int, snapshot_id: int, roles: frozenset[str]):
        project, _ = access_project(user=self.user, project_id=project_id, roles=roles)
        snapshot = snapshot_get(project=project, snapshot_id=snapshot_id)
        if snapshot is None:
            raise Http404(NO_SUCH_SNAPSHOT)
        return snapshot

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(AugmentationSerializer), **REFUSED})
    def get(self, request: Request, project_id: int, snapshot_id: int) -> Response:
        snapshot = self._snapshot(project_id, snapshot_id, REVIEW)
        self.filter_values(request)
        return self.page(request, selectors.augmentation_list(snapshot=snapshot), AugmentationSerializer)

    @extend_schema(request=InputSerializer, responses={201: AugmentationSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, snapshot_id: int) -> Response:
        snapshot = self._snapshot(project_id, snapshot_id, MANAGE)
        data = validated(self.InputSerializer, request.data)
        augmentation = services.augmentation_start(snapshot=snapshot, user=self.user, **data)
        return Response(AugmentationSerializer(augmentation).data, status=status.HTTP_201_CREATED)


class AugmentationDetailApi(ApiView):
    """Owners and reviewers: one augmentation of a snapshot, its progress and what it made."""

    @extend_schema(responses={200: AugmentationSerializer, **DENIED})
    def get(self, request: Request, project_id: int, augmentation_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        augmentation = selectors.augmentation_get(project=project, augmentation_id=augmentation_id)
        if augmentation is None:
            raise Http404(NO_SUCH_AUGMENTATION)
        return Response(AugmentationSerializer(augmentation).data)
