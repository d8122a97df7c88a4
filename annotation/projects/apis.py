"""REST API of projects: the project, its members, labels and guideline versions."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.annotate.services import (
    guideline_state,
)
from annotation.models import GoalMetric, Label, Role, TaskType
from annotation.permissions import MANAGE, access_project
from annotation.projects.forms import HOTKEY_RESERVED, LABEL_LISTED_TWICE, RESERVED_HOTKEYS
from annotation.projects.guidelines import diff_lines, render_markdown
from annotation.projects.selectors import (
    guideline_versions,
    label_list,
    membership_list,
    project_memberships_for_user,
    project_overview,
)
from annotation.projects.services import (
    LEASE_MAX_SECONDS,
    LEASE_MIN_SECONDS,
    guideline_acknowledge,
    guideline_current,
    guideline_publish,
    label_create,
    membership_set_role,
    project_archive,
    project_create,
    project_set_lease,
    project_set_overlap,
)
from core.api import DENIED, REFUSED, ApiView, ErrorSerializer, validated
from core.errors import ServiceError

NO_GUIDELINES = "This project has no guidelines yet."


GUIDELINE_NOT_CURRENT = "This is not the current guideline version: read the current one and acknowledge that."


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "color", "hotkey", "position"]


class ProjectSerializer(serializers.Serializer):
    """A project as the caller sees it: its settings, their role, its labels and current guideline version."""

    id = serializers.IntegerField(source="project.pk")
    name = serializers.CharField(source="project.name")
    description = serializers.CharField(source="project.description")
    task_type = serializers.ChoiceField(choices=TaskType.choices, source="project.task_type")
    goal_metric = serializers.ChoiceField(choices=GoalMetric.choices, source="project.goal_metric")
    overlap = serializers.IntegerField(source="project.overlap")
    lease_seconds = serializers.IntegerField(source="project.lease_seconds")
    audit_rate = serializers.FloatField(source="project.audit_rate")
    review_all = serializers.BooleanField(source="project.review_all")
    created_at = serializers.DateTimeField(source="project.created_at")
    role = serializers.ChoiceField(choices=Role.choices)
    labels = LabelSerializer(many=True)
    guideline_version = serializers.IntegerField(allow_null=True)


class ProjectListApi(ApiView):
    """The caller's projects, newest first, archived ones left out."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="project.pk")
        name = serializers.CharField(source="project.name")
        task_type = serializers.ChoiceField(choices=TaskType.choices, source="project.task_type")
        role = serializers.ChoiceField(choices=Role.choices)
        created_at = serializers.DateTimeField(source="project.created_at")

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        memberships = project_memberships_for_user(user=request.user)
        return Response(self.OutputSerializer(memberships, many=True).data)


class ProjectCreateApi(ApiView):
    """Any signed-in user may start a project and becomes its owner."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        task_type = serializers.ChoiceField(choices=TaskType.choices, default=TaskType.SINGLE_LABEL)
        labels = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, default=list,
            help_text="Label names in order; hotkeys 1-9 follow it. Empty for instruction projects.",
        )
        overlap = serializers.IntegerField(min_value=1, max_value=20, default=2)
        lease_seconds = serializers.IntegerField(min_value=LEASE_MIN_SECONDS, max_value=LEASE_MAX_SECONDS, default=900)
        goal_metric = serializers.ChoiceField(
            choices=GoalMetric.choices, required=False, allow_null=True, default=None,
            help_text="Left out: macro F1 for classification, ROUGE-L for instruction projects.",
        )
        guidelines = serializers.CharField(
            required=False, allow_blank=True, default="", trim_whitespace=False,
            help_text="Markdown, published as version 1.",
        )

        def validate_labels(self, names: list[str]) -> list[str]:
            seen: set[str] = set()
            for name in names:
                if name.casefold() in seen:
                    raise serializers.ValidationError(LABEL_LISTED_TWICE.format(name=name))
                seen.add(name.casefold())
            return names

    @extend_schema(request=InputSerializer, responses={201: ProjectSerializer, 400: ErrorSerializer})
    def post(self, request: Request) -> Response:
        data = validated(self.InputSerializer, request.data)
        project = project_create(owner=request.user, **data)
        overview = project_overview(project=project, role=Role.OWNER)
        return Response(ProjectSerializer(overview).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(ApiView):
    @extend_schema(responses={200: ProjectSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=request.user, project_id=project_id)
        return Response(ProjectSerializer(project_overview(project=project, role=role)).data)


class ProjectUpdateApi(ApiView):
    """Owner: change overlap and lease. Claims already taken keep the lease they were given."""

    class InputSerializer(serializers.Serializer):
        overlap = serializers.IntegerField(min_value=1, max_value=20, required=False)
        lease_seconds = serializers.IntegerField(
            min_value=LEASE_MIN_SECONDS, max_value=LEASE_MAX_SECONDS, required=False
        )

    @extend_schema(request=InputSerializer, responses={200: ProjectSerializer, **REFUSED})
    def patch(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        if data.get("overlap", project.overlap) != project.overlap:
            project_set_overlap(project=project, overlap=data["overlap"])
        if data.get("lease_seconds", project.lease_seconds) != project.lease_seconds:
            project_set_lease(project=project, lease_seconds=data["lease_seconds"])
        return Response(ProjectSerializer(project_overview(project=project, role=role)).data)


class ProjectArchiveApi(ApiView):
    """Owner: deleting a project archives it; nothing anyone did is removed, and it leaves every list."""

    @extend_schema(responses={204: None, **DENIED})
    def delete(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        project_archive(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=Role.choices)
    created_at = serializers.DateTimeField()


class MemberListApi(ApiView):
    @extend_schema(responses={200: MemberSerializer(many=True), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        return Response(MemberSerializer(membership_list(project=project), many=True).data)


class MemberSetApi(ApiView):
    """Owner: add a user by username, or change their role; the last owner cannot step down."""

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(request=InputSerializer, responses={200: MemberSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        membership = membership_set_role(project=project, username=data["username"], role=data["role"])
        return Response(MemberSerializer(membership).data)


class LabelListApi(ApiView):
    @extend_schema(responses={200: LabelSerializer(many=True), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        return Response(LabelSerializer(label_list(project=project), many=True).data)


class LabelCreateApi(ApiView):
    """Owner: add a label at the end of the list."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        color = serializers.RegexField(
            r"^#[0-9a-fA-F]{6}$", required=False, allow_blank=True, default="",
            error_messages={"invalid": "Use a hex colour such as #1f77b4."},
            help_text="Left out: the next colour of the default palette.",
        )
        hotkey = serializers.CharField(
            max_length=1, required=False, allow_blank=True, allow_null=True, default=None,
            help_text="Left out: the next digit while there is one; empty: no hotkey.",
        )

        def validate_hotkey(self, key: str | None) -> str | None:
            if key and key in RESERVED_HOTKEYS:
                raise serializers.ValidationError(HOTKEY_RESERVED)
            return key

    @extend_schema(request=InputSerializer, responses={201: LabelSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        label = label_create(project=project, name=data["name"], color=data["color"], hotkey=data["hotkey"])
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)


class GuidelineVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    change_note = serializers.CharField()
    author = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class GuidelineListApi(ApiView):
    """Every published version, newest first."""

    @extend_schema(responses={200: GuidelineVersionSerializer(many=True), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        versions = guideline_versions(project=project)
        return Response(GuidelineVersionSerializer(versions, many=True).data)


class GuidelineCurrentApi(ApiView):
    """The current version, as Markdown and as sanitised HTML, and whether the caller acknowledged it."""

    class OutputSerializer(serializers.Serializer):
        version = serializers.IntegerField(source="guideline.version")
        body = serializers.CharField(source="guideline.body")
        html = serializers.CharField(help_text="The body rendered, every tag outside a safe list removed.")
        change_note = serializers.CharField(source="guideline.change_note")
        author = serializers.CharField(source="guideline.created_by.username")
        created_at = serializers.DateTimeField(source="guideline.created_at")
        acknowledged = serializers.BooleanField(help_text="Whether the caller acknowledged this version.")

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        guideline, needs_ack = guideline_state(user=request.user, project=project)
        if guideline is None:
            raise Http404(NO_GUIDELINES)
        out = {"guideline": guideline, "html": render_markdown(guideline.body), "acknowledged": not needs_ack}
        return Response(self.OutputSerializer(out).data)


class GuidelinePublishApi(ApiView):
    """Owner: publish a new version; annotators must acknowledge it before their next item.

    The answer shows what changed against the previous version, line by line, and the rendered HTML.
    """

    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(trim_whitespace=False, help_text="Markdown.")
        change_note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        class DiffLineSerializer(serializers.Serializer):
            kind = serializers.ChoiceField(choices=["same", "added", "removed"])
            text = serializers.CharField()

        version = serializers.IntegerField(source="guideline.version")
        body = serializers.CharField(source="guideline.body")
        change_note = serializers.CharField(source="guideline.change_note")
        author = serializers.CharField(source="guideline.created_by.username")
        created_at = serializers.DateTimeField(source="guideline.created_at")
        html = serializers.CharField()
        previous_version = serializers.IntegerField(allow_null=True)
        diff = DiffLineSerializer(many=True)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        previous = guideline_current(project=project)
        guideline = guideline_publish(
            project=project, author=request.user, body=data["body"], change_note=data["change_note"]
        )
        changes = diff_lines(previous.body if previous else "", guideline.body)
        out = {
            "guideline": guideline,
            "html": render_markdown(guideline.body),
            "previous_version": previous.version if previous else None,
            "diff": [{"kind": kind, "text": text} for kind, text in changes],
        }
        return Response(self.OutputSerializer(out).data, status=status.HTTP_201_CREATED)


class GuidelineAcknowledgeApi(ApiView):
    """Any member: confirm having read the current version. Naming the version read guards against
    acknowledging one published after the reader loaded theirs."""

    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(required=False, help_text="The version read; left out: the current one.")

    class OutputSerializer(serializers.Serializer):
        version = serializers.IntegerField(source="guideline_version.version")
        acknowledged_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        data = validated(self.InputSerializer, request.data)
        current = guideline_current(project=project)
        if current is None:
            raise ServiceError(NO_GUIDELINES)
        if data.get("version", current.version) != current.version:
            raise ServiceError(GUIDELINE_NOT_CURRENT, field="version")
        ack = guideline_acknowledge(user=request.user, version=current)
        return Response(self.OutputSerializer(ack).data)
