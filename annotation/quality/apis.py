"""REST API of quality: the agreement report and noise scans."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import NoiseScan
from annotation.permissions import ANY_ROLE, REVIEW, access_project
from annotation.quality import services as quality
from annotation.quality.selectors import quality_report
from annotation.review.apis import _error
from core.errors import ServiceError


class QualityApi(APIView):
    """Agreement, accuracy, confusion and trend; an annotator gets only their own accuracy."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=request.user, project_id=project_id, roles=ANY_ROLE)
        return Response(quality_report(project=project, user=request.user, role=role))


class NoiseScanOutput(serializers.ModelSerializer):
    class Meta:
        model = NoiseScan
        fields = ["id", "status", "progress", "message", "params", "summary", "created_at", "started_at", "finished_at"]


class NoiseScanStartApi(APIView):
    class Input(serializers.Serializer):
        seed = serializers.IntegerField(required=False, default=0)

    @extend_schema(request=Input, responses=NoiseScanOutput)
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            scan = quality.noise_scan_start(project=project, user=request.user, params=dict(data.validated_data))
        except ServiceError as exc:
            return _error(exc)
        return Response(NoiseScanOutput(scan).data, status=status.HTTP_202_ACCEPTED)


class NoiseScanDetailApi(APIView):
    @extend_schema(responses=NoiseScanOutput)
    def get(self, request: Request, project_id: int, scan_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        scan = NoiseScan.objects.filter(project=project, pk=scan_id).first()
        if scan is None:
            raise Http404("No such scan.")
        return Response(NoiseScanOutput(scan).data)
