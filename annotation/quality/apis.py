"""REST API of quality: the agreement report, noise scans and the items each scan flagged."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import NoiseFlag, NoiseScan, ScanStatus
from annotation.permissions import ANY_ROLE, REVIEW, access_project
from annotation.quality.selectors import (
    annotator_quality,
    noise_flag_list,
    noise_scan_get,
    noise_scan_list,
    quality_report,
)
from annotation.quality.services import (
    SCAN_MODELS,
    UNKNOWN_MODEL,
    noise_scan_cancel,
    noise_scan_queue_place,
    noise_scan_start,
)
from annotation.review.routing_inputs import routing_plan
from core.api import (
    CONFLICT,
    DENIED,
    PAGE_PARAMETERS,
    REFUSED,
    SEED_MAX,
    ApiView,
    QueuePlaceSerializer,
    choice,
    paginated,
    validated,
)

NO_SUCH_SCAN = "No such scan."


def _score(raw: str) -> float:
    try:
        score = float(raw)
    except ValueError as exc:
        raise ValueError("use a number between 0 and 1") from exc
    if not 0 <= score <= 1:
        raise ValueError("use a number between 0 and 1")
    return score


class QualityApi(ApiView):
    """Agreement, accuracy, confusion and trend; an annotator gets only their own accuracy. An instruction project
    gets `responses` instead: ROUGE-L F1 between annotators' responses (per pair) and each annotator's against the
    judged final responses, with the share kept word for word (an annotator gets only their own row)."""

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The quality report."), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=self.user, project_id=project_id, roles=ANY_ROLE)
        return Response(quality_report(project=project, user=self.user, role=role))


class AnnotatorQualityApi(ApiView):
    """Owners and reviewers: each annotator's accuracy against the consensus, with 95 % Wilson intervals.

    From the latest succeeded noise scan; `annotators` is empty before one. Annotators get 403: they
    never see each other's figures (their own accuracy is in the quality report).
    """

    class OutputSerializer(serializers.Serializer):
        class Row(serializers.Serializer):
            annotator = serializers.CharField()
            n = serializers.IntegerField(help_text="Their items that had another vote.")
            agreed = serializers.IntegerField()
            accuracy = serializers.FloatField(allow_null=True)
            low = serializers.FloatField(allow_null=True, help_text="95 % Wilson interval, lower end.")
            high = serializers.FloatField(allow_null=True)
            crowdlab_quality = serializers.FloatField(help_text="cleanlab's annotator quality score.")

        scan = serializers.IntegerField(allow_null=True)
        finished_at = serializers.DateTimeField(allow_null=True)
        annotators = Row(many=True)

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        quality = annotator_quality(project=project) or {"scan": None, "finished_at": None, "annotators": []}
        return Response(self.OutputSerializer(quality).data)


class RoutingPlanApi(ApiView):
    """Owners and reviewers: what adaptive routing would do with the latest annotated items, whatever the policy in
    force (`policy` says which is): the preview before switching to it, and what it does now once switched."""

    class OutputSerializer(serializers.Serializer):
        class Voter(serializers.Serializer):
            who = serializers.CharField()
            role = serializers.CharField(help_text="Their role in the project; empty for someone no longer a member.")
            accuracy = serializers.FloatField(
                help_text="What the weighted vote counts their word at: their accuracy against the posterior of every "
                "vote on their items with two or more (one-coin Dawid-Skene, the model's vote included where it has "
                "one), pulled by 10 pseudo-items toward the prior they count at unmeasured (0.85 for a reviewer member "
                "or anyone who reviewed, else 0.8), and clipped as the vote clips it (0.99 at most); for someone not "
                "measured yet, that prior."
            )
            low = serializers.FloatField(allow_null=True, help_text="95 % interval, lower end; null if not measured.")
            high = serializers.FloatField(allow_null=True)
            measured_on = serializers.IntegerField(help_text="Their judgements on items with two or more votes.")
            annotations = serializers.IntegerField()
            reviews = serializers.IntegerField(help_text="Review decisions they made (their votes too).")

        policy = serializers.CharField(
            help_text="The routing policy in force now: fixed on a task type adaptive routing does not weigh (other "
            "than single-label), whatever the project's routing_policy setting says."
        )
        budget = serializers.FloatField()
        audit_rate = serializers.FloatField()
        items = serializers.IntegerField(help_text="Items replayed: the latest with their overlap annotations in.")
        done = serializers.IntegerField(help_text="Would be accepted on the weighted vote.")
        annotator = serializers.IntegerField(help_text="Would get one more annotator.")
        reviewer = serializers.IntegerField(
            help_text="Would go to a reviewer: the vote in doubt and no further annotator to ask, or an unsure "
            "annotator's note to answer (audits apart)."
        )
        audit = serializers.IntegerField(
            help_text="Would be accepted on the vote, then drawn for audit (audit_rate while the budget has a "
            "judgement to spare and pays for every item in doubt and the audits beside them; every one under "
            "review_all)."
        )
        expected_accuracy = serializers.FloatField(allow_null=True)
        fixed_expected_accuracy = serializers.FloatField(allow_null=True)
        measured_annotators = serializers.IntegerField()
        reviewer_accuracy = serializers.FloatField(
            allow_null=True,
            help_text="What the plan expects of a review (and a fixed-routing disagreement is worth): the measured "
            "accuracy of those who review, weighed by their reviews (0.85 for one not yet measured).",
        )
        annotator_accuracy = serializers.FloatField(
            allow_null=True,
            help_text="What the plan expects of one more annotator: the measured accuracy of those who annotate, "
            "weighed by their annotations (0.8 for one not yet measured).",
        )
        bar = serializers.FloatField(
            help_text="The least doubt (1 - the weighted vote's probability) an item needs for a further judgement, "
            "where the budget cannot pay for one on every item in doubt: the most doubtful decisions first, over the "
            "latest items' decisions (at their overlap votes and at each further annotator's); a tie passes it. 0 "
            "while the budget pays for every item in doubt, under 50 items, under review_all, and for a project that "
            "is not single-label."
        )
        measured_ago = serializers.FloatField(
            allow_null=True,
            help_text="Seconds since the server process that answered last measured the voters' accuracies (they are "
            "measured again once a tenth more annotations, and at least 20, are in, or on the first read five "
            "minutes after); null for a project that is not single-label.",
        )
        voters = Voter(
            many=True,
            help_text="Each person's weight in the weighted vote as routing reads it now: annotators, then reviewers "
            "and owners, then former members; empty for a project that is not single-label.",
        )
        blocked = serializers.CharField(
            help_text="Why there is no plan (a budget under the overlap, which fixed routing allows and adaptive "
            "routing refuses: the figures are then empty), else empty."
        )

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        return Response(self.OutputSerializer(routing_plan(project=project)).data)


class NoiseScanSerializer(serializers.ModelSerializer):
    queue = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField(
        help_text="while queued: how many jobs are ahead of it in its queue (quality; training for model encoder); "
        "else null"
    )

    class Meta:
        model = NoiseScan
        fields = [
            "id", "status", "progress", "message", "params", "summary", "created_at", "started_at", "finished_at",
            "queue", "queue_position",
        ]

    @extend_schema_field(QueuePlaceSerializer(allow_null=True))
    def get_queue(self, scan: NoiseScan) -> dict[str, Any] | None:
        place = noise_scan_queue_place(scan)
        return place.as_json() if place else None

    @extend_schema_field(OpenApiTypes.INT)
    def get_queue_position(self, scan: NoiseScan) -> int | None:
        return (self.get_queue(scan) or {}).get("position")


def _scan(request: Request, project_id: int, scan_id: int) -> NoiseScan:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    scan = noise_scan_get(project=project, scan_id=scan_id)
    if scan is None:
        raise Http404(NO_SUCH_SCAN)
    return scan


class NoiseScanListApi(ApiView):
    """Owners and reviewers: the project's noise scans, newest first; start one (queued: 202, poll it)."""

    filters = {"status": choice(ScanStatus.values)}

    class InputSerializer(serializers.Serializer):
        seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=SEED_MAX)
        model = serializers.ChoiceField(
            choices=SCAN_MODELS,
            required=False,
            # the service's own words (the page's), DRF filling in the value given
            error_messages={"invalid_choice": UNKNOWN_MODEL.format(model="{input}", models=", ".join(SCAN_MODELS))},
            help_text="linear: logistic regression on frozen embeddings and n-grams (seconds). encoder: that model "
            "averaged with the encoder fine-tuned on each fold (on two free CPU cores 4-12 minutes per thousand texts, "
            "text messages at the top of that, more on a busy machine; sharper on sentences, docs/benchmarks.md). "
            "Left out: the "
            "server's LABELLOOP_SCAN_MODEL, linear unless set.",
        )

    @extend_schema(
        parameters=[*PAGE_PARAMETERS, OpenApiParameter("status", str, enum=ScanStatus.values)],
        responses={200: paginated(NoiseScanSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        return self.page(request, noise_scan_list(project=project, **self.filter_values(request)), NoiseScanSerializer)

    @extend_schema(request=InputSerializer, responses={202: NoiseScanSerializer, **REFUSED, **CONFLICT})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        data = validated(self.InputSerializer, request.data)
        scan = noise_scan_start(project=project, user=self.user, params=dict(data))
        return Response(NoiseScanSerializer(scan).data, status=status.HTTP_202_ACCEPTED)


class NoiseScanDetailApi(ApiView):
    """Owners and reviewers: one scan, its progress while it runs (poll it), its summary once it has finished."""

    @extend_schema(responses={200: NoiseScanSerializer, **DENIED})
    def get(self, request: Request, project_id: int, scan_id: int) -> Response:
        return Response(NoiseScanSerializer(_scan(request, project_id, scan_id)).data)


class NoiseScanCancelApi(ApiView):
    """Cancel a queued or running scan: at once in its row (so another scan may start); the worker stops at its next
    step and writes no flag. 409 once the scan has ended."""

    @extend_schema(request=None, responses={200: NoiseScanSerializer, **REFUSED, **CONFLICT})
    def post(self, request: Request, project_id: int, scan_id: int) -> Response:
        scan = noise_scan_cancel(scan=_scan(request, project_id, scan_id), user=self.user)
        return Response(NoiseScanSerializer(scan).data)


class NoiseFlagListApi(ApiView):
    """The items a scan flagged as likely mislabelled, least likely right first (`score`)."""

    filters = {"max_score": _score}

    class OutputSerializer(serializers.ModelSerializer):
        text = serializers.CharField(source="item.text")
        split = serializers.CharField(
            allow_null=True, help_text="The item's split; a test item is flagged but not sent to review."
        )

        class Meta:
            model = NoiseFlag
            fields = ["id", "item_id", "text", "score", "given", "suggested", "split", "created_at"]
            extra_kwargs = {
                "score": {
                    "help_text": "The scan's probability (0-1) that the final label is right: the flags page's "
                    "'chance it is right', a noise review task's noise_score."
                }
            }

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter(
                "max_score", float, description="Only flags whose score (the chance the final label is right, 0-1) "
                "is at most this."
            ),
        ],
        responses={200: paginated(OutputSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int, scan_id: int) -> Response:
        scan = _scan(request, project_id, scan_id)
        return self.page(request, noise_flag_list(scan=scan, **self.filter_values(request)), self.OutputSerializer)
