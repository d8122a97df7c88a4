"""REST API of the annotate loop: claim the next item, submit, skip, draft, undo, annotations, progress, export.

Blind promise: an annotator only ever reads their own claim, draft and annotations; everyone's values side by
side (the annotations list beyond one's own, the export) are for owners and reviewers.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.annotate.selectors import (
    annotation_list,
    annotations_export_rows,
    annotator_progress,
    draft_get,
    project_progress,
)
from annotation.annotate.services import (
    GUIDELINES_NOT_ACKNOWLEDGED,
    annotation_submit,
    annotation_undo,
    claim_next,
    claim_skip,
    draft_autosave,
)
from annotation.models import Annotation, Claim, Project
from annotation.permissions import ANNOTATE, REVIEW, access_item, access_project
from annotation.projects.selectors import label_list
from annotation.review.selectors import send_back_of
from core.api import (
    CONFLICT,
    DENIED,
    PAGE_PARAMETERS,
    REFUSED,
    ApiView,
    ErrorSerializer,
    jsonl_export_responses,
    moment,
    paginated,
    text,
    validated,
    whole_number,
)
from core.streaming import JsonLinesRenderer, jsonl_response


class DraftSerializer(serializers.Serializer):
    value = serializers.JSONField()
    unsure = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField()


class SentBackSerializer(serializers.Serializer):
    comment = serializers.CharField(help_text="What the reviewer asks to look at again.")
    at = serializers.DateTimeField(help_text="When the item was sent back.")


class ClaimedItemSerializer(serializers.Serializer):
    """The item the caller holds, with their own draft: never anyone else's work (blind)."""

    item_id = serializers.IntegerField(source="claim.item.pk")
    external_id = serializers.CharField(source="claim.item.external_id")
    text = serializers.CharField(source="claim.item.text")
    response = serializers.CharField(
        source="claim.item.response", help_text="Instruction projects: the imported response to edit or judge."
    )
    metadata = serializers.JSONField(source="claim.item.metadata")
    claimed_at = serializers.DateTimeField(source="claim.claimed_at")
    lease_expires_at = serializers.DateTimeField(source="claim.lease_expires_at")
    draft = DraftSerializer(allow_null=True)
    sent_back = SentBackSerializer(
        allow_null=True,
        help_text="When a reviewer sent the item back to its annotators (the caller's earlier label is their draft): "
        "the reviewer's comment and when (who is not said: the annotate page does not say either); null otherwise.",
    )
    prelabel = serializers.JSONField(
        required=False, help_text="A suggested value (imported or the model's); only when the owner shows pre-labels."
    )


def _claimed(user: User, claim: Claim, *, project: Project, fresh: bool = False) -> dict[str, Any]:
    """A claim with the caller's draft and the reviewer's send-back note; a fresh claim can have neither (a sent-back
    item comes back through its old claim), so it costs no query."""
    draft = None if fresh else draft_get(user=user, item=claim.item)
    sent_back = None if fresh else send_back_of(item=claim.item)
    claimed: dict[str, Any] = {"claim": claim, "draft": draft, "sent_back": sent_back}
    if project.show_prelabels and claim.item.prelabel is not None:
        claimed["prelabel"] = claim.item.prelabel  # pre-labels bias blind labelling: absent unless shown
    return claimed


class ClaimNextApi(ApiView):
    """Claim the next item for the caller (or get back the one already held).

    204 when nothing is left for the caller; 409 while the current guidelines are not acknowledged.
    """

    class NeedsAckSerializer(ErrorSerializer):
        guideline_version = serializers.IntegerField()

    @extend_schema(
        request=None,
        responses={
            200: ClaimedItemSerializer,
            204: OpenApiResponse(description="Nothing is left for you to annotate."),
            409: NeedsAckSerializer,
            **DENIED,
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=ANNOTATE)
        state = claim_next(annotator=self.user, project=project)
        if state.needs_ack:
            body = {
                "detail": GUIDELINES_NOT_ACKNOWLEDGED,
                "field": "guidelines",
                "guideline_version": state.guideline.version if state.guideline else None,
            }
            return Response(body, status=status.HTTP_409_CONFLICT)
        if state.claim is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        claimed = _claimed(self.user, state.claim, project=project, fresh=state.fresh)
        return Response(ClaimedItemSerializer(claimed).data)


class AnnotationSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username")
    guideline_version = serializers.IntegerField(source="guideline_version.version", allow_null=True)

    class Meta:
        model = Annotation
        fields = ["id", "item_id", "annotator", "value", "unsure", "note", "guideline_version", "created_at"]


class AnnotationListApi(ApiView):
    """Submitted annotations, oldest first: owners and reviewers see everyone's, an annotator only their own."""

    filters = {"annotator": text, "item_id": whole_number, "created_after": moment, "created_before": moment}

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("annotator", str, description="Username (owners and reviewers)."),
            OpenApiParameter("item_id", int),
            OpenApiParameter("created_after", str, description="ISO 8601; inclusive."),
            OpenApiParameter("created_before", str, description="ISO 8601; exclusive."),
        ],
        responses={200: paginated(AnnotationSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=self.user, project_id=project_id)
        wanted = self.filter_values(request)
        mine = None if role in REVIEW else self.user  # the blind promise
        rows = annotation_list(
            project=project,
            annotator=mine,
            annotator_username=wanted.get("annotator"),
            item_id=wanted.get("item_id"),
            created_after=wanted.get("created_after"),
            created_before=wanted.get("created_before"),
        )
        return self.page(request, rows, AnnotationSerializer)


class AnnotationSubmitApi(ApiView):
    """Store the caller's value for an item they hold. Sending the same submission twice stores it once."""

    class InputSerializer(serializers.Serializer):
        value = serializers.JSONField(
            help_text='{"label": name} (single-label), {"labels": [names]} (multi-label) or {"response": text}.'
        )
        unsure = serializers.BooleanField(default=False)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)

    @extend_schema(request=InputSerializer, responses={201: AnnotationSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, item_id: int) -> Response:
        item, _ = access_item(user=self.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
        data = validated(self.InputSerializer, request.data)
        labels = label_list(project=item.project)
        annotation = annotation_submit(
            annotator=self.user,
            item=item,
            value=data["value"],
            label_names=[label.name for label in labels],
            unsure=data["unsure"],
            note=data["note"],
        )
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


class ClaimSkipApi(ApiView):
    """Give an item back with a reason; the caller is not offered it again."""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(allow_blank=True, max_length=500)

    class OutputSerializer(serializers.Serializer):
        item_id = serializers.IntegerField()
        status = serializers.CharField()
        reason = serializers.CharField(source="skip_reason")

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, item_id: int) -> Response:
        item, _ = access_item(user=self.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
        data = validated(self.InputSerializer, request.data)
        claim = claim_skip(annotator=self.user, item=item, reason=data["reason"])
        return Response(self.OutputSerializer(claim).data)


class AnnotationUndoApi(ApiView):
    """Take back the caller's latest submission while nobody has reviewed it: the item is theirs again,
    its value kept as their draft."""

    @extend_schema(request=None, responses={200: ClaimedItemSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=ANNOTATE)
        claim = annotation_undo(annotator=self.user, project=project)
        return Response(ClaimedItemSerializer(_claimed(self.user, claim, project=project)).data)


class DraftApi(ApiView):
    """Autosave whatever the caller has so far, valid or not yet, while they hold the item (409 after)."""

    class InputSerializer(serializers.Serializer):
        value = serializers.JSONField()
        unsure = serializers.BooleanField(default=False)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)

    @extend_schema(request=InputSerializer, responses={200: DraftSerializer, **CONFLICT, **REFUSED})
    def put(self, request: Request, project_id: int, item_id: int) -> Response:
        item, _ = access_item(user=self.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
        data = validated(self.InputSerializer, request.data)
        draft = draft_autosave(annotator=self.user, item=item, **data)
        return Response(DraftSerializer(draft).data)


class ProjectProgressApi(ApiView):
    """Item counts by stage, for every member: counts only, no values."""

    class OutputSerializer(serializers.Serializer):
        total = serializers.IntegerField()
        done = serializers.IntegerField(help_text="Items with all their annotations (annotated, in review, approved).")
        in_annotation = serializers.IntegerField()
        new = serializers.IntegerField()
        percent = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id)
        return Response(self.OutputSerializer(project_progress(project=project)).data)


class MyProgressApi(ApiView):
    """What the caller has annotated, skipped and holds, and how much is still open to them."""

    class OutputSerializer(serializers.Serializer):
        submitted = serializers.IntegerField()
        skipped = serializers.IntegerField()
        holding = serializers.IntegerField()
        open_for_me = serializers.IntegerField()
        percent = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=ANNOTATE)
        return Response(self.OutputSerializer(annotator_progress(user=self.user, project=project)).data)


class AnnotationExportApi(ApiView):
    """Every submitted annotation as JSON Lines, streamed: one line per annotation, items in id order.

    Owners and reviewers only: it shows every annotator's value, which the blind promise keeps from
    annotators (403).
    """

    renderer_classes = [renderers.JSONRenderer, JsonLinesRenderer]

    @extend_schema(
        responses=jsonl_export_responses(
            "One JSON object per line: item_id, external_id, text, annotator, value, unsure, note, "
            "guideline_version, created_at."
        )
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        return jsonl_response(annotations_export_rows(project=project), f"project-{project.pk}-annotations.jsonl")
