"""REST API of projects: the caller and their token, projects, members, labels and guideline versions.

Resources follow the conventions in docs/api.md: collections (`GET` pages, `POST` creates: 201) and members
(`GET`, `PATCH`: 200, `DELETE`: 204) nested under the project that owns them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.annotate.services import guideline_state
from annotation.models import (
    AUDIT_RATE_HELP,
    ROUTING_BUDGET_DEFAULT,
    ROUTING_BUDGET_HELP,
    ROUTING_POLICY_HELP,
    GoalMetric,
    Label,
    Membership,
    Role,
    RoutingPolicy,
    TaskType,
)
from annotation.permissions import MANAGE, access_project
from annotation.projects.guidelines import diff_lines, render_markdown
from annotation.projects.selectors import (
    account_must_change_password,
    guideline_version_get,
    guideline_versions,
    label_list,
    membership_get,
    membership_list,
    project_memberships_for_user,
    project_overview,
    token_get,
)
from annotation.projects.services import (
    LEASE_MAX_SECONDS,
    LEASE_MIN_SECONDS,
    guideline_acknowledge_current,
    guideline_current,
    guideline_publish,
    label_create,
    label_update,
    member_add,
    membership_remove,
    membership_set_role,
    project_archive,
    project_create,
    project_routing_check,
    project_routing_set,
    project_set_lease,
    project_set_overlap,
    project_set_slice_fields,
    project_span_overlap_set,
    routing_settings,
    token_issue,
    token_revoke,
)
from core.api import CONFLICT, DENIED, PAGE_PARAMETERS, REFUSED, ApiView, ErrorSerializer, choice, paginated, validated
from core.errors import ServiceError
from core.ratelimit import client_address, login_failed, login_refused, refusal_message

NO_GUIDELINES = "This project has no guidelines yet."


NO_SUCH_LABEL = "No such label."


NO_SUCH_MEMBER = "No such member."


NO_SUCH_VERSION = "No such guideline version."


BAD_LOGIN = "Unable to sign in with these credentials."


# --- The caller: token and identity -----------------------------------------------------------------


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(source="key", help_text="Send it as `Authorization: Token <token>`.")
    created = serializers.DateTimeField()


class TooManyFailures(ServiceError):
    """Sign-in refused by the failure limit (core/ratelimit.py), whatever the password."""

    status_code = 429


class TokenApi(ApiView):
    """The caller's API token: exchange a username and password for it, see whether one exists, revoke it."""

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})

    class OutputSerializer(serializers.Serializer):
        exists = serializers.BooleanField()
        created = serializers.DateTimeField(
            allow_null=True, help_text="When it was made; its key is never shown again."
        )

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        request=InputSerializer, responses={200: TokenSerializer, 400: ErrorSerializer, 429: ErrorSerializer}, auth=[]
    )
    def post(self, request: Request) -> Response:
        data = validated(self.InputSerializer, request.data)
        address = client_address(request)
        if login_refused(username=data["username"], address=address):
            raise TooManyFailures(refusal_message(), field="username")
        user = authenticate(request, username=data["username"], password=data["password"])
        if user is None:
            login_failed(username=data["username"], address=address)
            raise ServiceError(BAD_LOGIN)
        return Response(TokenSerializer(token_issue(user=user)).data)

    @extend_schema(responses={200: OutputSerializer, 401: ErrorSerializer})
    def get(self, request: Request) -> Response:
        token = token_get(user=self.user)
        out = {"exists": token is not None, "created": token.created if token else None}
        return Response(self.OutputSerializer(out).data)

    @extend_schema(responses={204: None, 401: ErrorSerializer})
    def delete(self, request: Request) -> Response:
        token_revoke(user=self.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRotateApi(ApiView):
    """Replace the caller's token with a new one: the old key stops working at once."""

    @extend_schema(request=None, responses={200: TokenSerializer, 401: ErrorSerializer})
    def post(self, request: Request) -> Response:
        return Response(TokenSerializer(token_issue(user=self.user, rotate=True)).data)


class MeApi(ApiView):
    """The caller: who they are, whether they still have to choose their own password, their projects."""

    class OutputSerializer(serializers.Serializer):
        class ProjectRoleSerializer(serializers.Serializer):
            id = serializers.IntegerField(source="project.pk")
            name = serializers.CharField(source="project.name")
            role = serializers.ChoiceField(choices=Role.choices)

        id = serializers.IntegerField(source="user.pk")
        username = serializers.CharField(source="user.username")
        email = serializers.CharField(source="user.email")
        must_change_password = serializers.BooleanField(
            help_text="Created by an owner with a one-time password not changed yet (/accounts/password_change/)."
        )
        projects = ProjectRoleSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer, 401: ErrorSerializer})
    def get(self, request: Request) -> Response:
        out = {
            "user": self.user,
            "must_change_password": account_must_change_password(user=self.user),
            "projects": project_memberships_for_user(user=self.user),
        }
        return Response(self.OutputSerializer(out).data)


# --- Projects --------------------------------------------------------------------------------------


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
    review_all = serializers.BooleanField(
        source="project.review_all",
        help_text="Every annotated item goes to review, agreed ones as audits (default false). Read-only here: "
        "a site administrator sets it in Django's admin (/admin/, Projects); PATCH does not take it.",
    )
    allow_overlapping_spans = serializers.BooleanField(source="project.allow_overlapping_spans")
    routing_policy = serializers.ChoiceField(choices=RoutingPolicy.choices, source="project.routing_policy")
    routing_in_force = serializers.ChoiceField(
        choices=RoutingPolicy.choices,
        source="project.routing_in_force",
        help_text="The routing that applies: the routing_policy setting on single-label projects, fixed on other task "
        "types (adaptive routing weighs single labels only)."
    )
    routing_budget = serializers.FloatField(source="project.routing_budget")
    slice_fields = serializers.ListField(child=serializers.CharField(), source="project.slice_fields")
    created_at = serializers.DateTimeField(source="project.created_at")
    role = serializers.ChoiceField(choices=Role.choices)
    labels = LabelSerializer(many=True)
    guideline_version = serializers.IntegerField(allow_null=True)


class ProjectListApi(ApiView):
    """The caller's projects, newest first, archived ones left out; any signed-in user may start one."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="project.pk")
        name = serializers.CharField(source="project.name")
        task_type = serializers.ChoiceField(choices=TaskType.choices, source="project.task_type")
        role = serializers.ChoiceField(choices=Role.choices)
        created_at = serializers.DateTimeField(source="project.created_at")

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
        allow_overlapping_spans = serializers.BooleanField(
            required=False, default=False, help_text="Span projects: allow overlapping spans (default: refused)."
        )
        routing_policy = serializers.ChoiceField(
            choices=RoutingPolicy.choices, default=RoutingPolicy.ADAPTIVE, help_text=ROUTING_POLICY_HELP
        )
        routing_budget = serializers.FloatField(
            min_value=1.0,
            max_value=20.0,
            required=False,
            help_text=ROUTING_BUDGET_HELP
            + f" Left out: {ROUTING_BUDGET_DEFAULT:g}, or the overlap plus half a judgement where that is higher.",
        )
        audit_rate = serializers.FloatField(
            min_value=0.0, max_value=1.0, required=False, help_text=AUDIT_RATE_HELP + " Left out: 0.1."
        )

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(OutputSerializer), 401: ErrorSerializer})
    def get(self, request: Request) -> Response:
        self.filter_values(request)
        return self.page(request, project_memberships_for_user(user=self.user), self.OutputSerializer)

    @extend_schema(
        request=InputSerializer, responses={201: ProjectSerializer, 400: ErrorSerializer, 401: ErrorSerializer}
    )
    def post(self, request: Request) -> Response:
        data = validated(self.InputSerializer, request.data)
        project = project_create(owner=self.user, **data)
        overview = project_overview(project=project, role=Role.OWNER)
        return Response(ProjectSerializer(overview).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(ApiView):
    """One project; the owner changes its overlap, lease, routing, slice fields and (span projects) whether spans
    may overlap, or deletes it (archived: nothing is removed)."""

    class InputSerializer(serializers.Serializer):
        READ_ONLY = {
            "review_all": "a site administrator sets it in Django's admin (every accepted item then goes to a "
            "reviewer, budget or not)",
            "task_type": "a project keeps the task type it was made with; make a new project for another",
            "labels": "labels have their own endpoints: POST labels/ adds one, PATCH labels/{label_id}/ changes one",
        }
        overlap = serializers.IntegerField(min_value=1, max_value=20, required=False)
        lease_seconds = serializers.IntegerField(
            min_value=LEASE_MIN_SECONDS, max_value=LEASE_MAX_SECONDS, required=False,
            help_text="Claims already taken keep the lease they were given.",
        )
        audit_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, help_text=AUDIT_RATE_HELP)
        routing_policy = serializers.ChoiceField(
            choices=RoutingPolicy.choices, required=False, help_text=ROUTING_POLICY_HELP
        )
        routing_budget = serializers.FloatField(
            min_value=1.0, max_value=20.0, required=False, help_text=ROUTING_BUDGET_HELP
        )
        slice_fields = serializers.ListField(
            child=serializers.CharField(max_length=100),
            required=False,
            max_length=10,
            help_text="Item metadata keys (or length_band) every evaluation reports its figures per value of.",
        )
        allow_overlapping_spans = serializers.BooleanField(
            required=False,
            help_text=(
                "Span projects: allow overlapping spans. Turning it off is refused (400, nothing changed) while any "
                "stored annotation, final label, pre-annotation, open review suggestion or rating correction holds "
                "overlapping spans; the error names how many and a few items."
            ),
        )

    @extend_schema(responses={200: ProjectSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=self.user, project_id=project_id)
        return Response(ProjectSerializer(project_overview(project=project, role=role)).data)

    @extend_schema(request=InputSerializer, responses={200: ProjectSerializer, **REFUSED})
    def patch(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        before = routing_settings(project)
        with transaction.atomic():  # a refusal changes nothing, the other fields of the same PATCH included
            overlaps = data.get("allow_overlapping_spans", project.allow_overlapping_spans)
            if overlaps != project.allow_overlapping_spans:
                project_span_overlap_set(project=project, allow=overlaps, user=self.user)
            if "slice_fields" in data:
                project_set_slice_fields(project=project, fields=data["slice_fields"])
            if data.get("overlap", project.overlap) != project.overlap:
                project_set_overlap(project=project, overlap=data["overlap"])
            if data.get("lease_seconds", project.lease_seconds) != project.lease_seconds:
                project_set_lease(project=project, lease_seconds=data["lease_seconds"])
            routing = {k: data[k] for k in ("routing_policy", "routing_budget", "audit_rate") if k in data}
            if routing:
                project_routing_set(project=project, **routing)
            project_routing_check(project=project, before=before)
        return Response(ProjectSerializer(project_overview(project=project, role=role)).data)

    @extend_schema(responses={204: None, **DENIED})
    def delete(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        project_archive(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Members ---------------------------------------------------------------------------------------


class MemberSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(source="user.pk")
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=Role.choices)
    created_at = serializers.DateTimeField()


def _member(project_id: int, user_id: int, request: Request, roles: frozenset[str] | None = None) -> Membership:
    project, _ = access_project(user=request.user, project_id=project_id, **({"roles": roles} if roles else {}))
    membership = membership_get(project=project, user_id=user_id)
    if membership is None:
        raise Http404(NO_SUCH_MEMBER)
    return membership


class MemberListApi(ApiView):
    """Who is in the project; the owner adds an existing user by username, or creates one.

    With `"create": true` the user is new: the answer carries a one-time password, shown this once and
    stored only hashed, which the user must change at first sign-in.
    """

    filters = {"role": choice(Role.values)}

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=Role.choices)
        # DRF's metaclass moves declared fields off the class, so this does not replace Serializer.create.
        create = serializers.BooleanField(  # type: ignore[assignment]
            default=False, help_text="Create this user (they must not exist yet)."
        )
        email = serializers.EmailField(required=False, allow_blank=True, default="", help_text="With create only.")

    class OutputSerializer(MemberSerializer):
        one_time_password = serializers.CharField(
            allow_null=True, help_text="Only when the user was created: shown once, never again."
        )

    @extend_schema(
        parameters=[*PAGE_PARAMETERS, OpenApiParameter("role", str, enum=Role.values)],
        responses={200: paginated(MemberSerializer), **DENIED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id)
        rows = membership_list(project=project, **self.filter_values(request))
        return self.page(request, rows, MemberSerializer)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        membership, password = member_add(project=project, added_by=self.user, **data)
        out = {"user": membership.user, "role": membership.role, "created_at": membership.created_at}
        out["one_time_password"] = password  # the only time it leaves the server
        return Response(self.OutputSerializer(out).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(ApiView):
    """One member; the owner changes their role or takes them out (the last owner can do neither to themself)."""

    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(responses={200: MemberSerializer, **DENIED})
    def get(self, request: Request, project_id: int, user_id: int) -> Response:
        return Response(MemberSerializer(_member(project_id, user_id, request)).data)

    @extend_schema(request=InputSerializer, responses={200: MemberSerializer, **REFUSED})
    def patch(self, request: Request, project_id: int, user_id: int) -> Response:
        membership = _member(project_id, user_id, request, MANAGE)
        data = validated(self.InputSerializer, request.data)
        membership = membership_set_role(
            project=membership.project, username=membership.user.get_username(), role=data["role"]
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None, **REFUSED})
    def delete(self, request: Request, project_id: int, user_id: int) -> Response:
        membership_remove(membership=_member(project_id, user_id, request, MANAGE))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Labels ----------------------------------------------------------------------------------------


class LabelListApi(ApiView):
    """The project's labels in order; the owner adds one at the end."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        color = serializers.RegexField(
            r"^#[0-9a-fA-F]{6}$", required=False, allow_blank=True, default="",
            error_messages={"invalid": "Use a hex colour such as #1f77b4."},
            help_text="Left out: the next colour of the default palette.",
        )
        hotkey = serializers.CharField(
            max_length=1, required=False, allow_blank=True, allow_null=True, default=None,
            help_text="Left out: the next digit while there is one; empty: no hotkey. Not S, U, G or ?.",
        )

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(LabelSerializer), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id)
        self.filter_values(request)
        return self.page(request, label_list(project=project), LabelSerializer)

    @extend_schema(request=InputSerializer, responses={201: LabelSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        label = label_create(project=project, name=data["name"], color=data["color"], hotkey=data["hotkey"])
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)


class LabelDetailApi(ApiView):
    """One label; the owner changes its colour and hotkey, and its name while no annotation names it."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        color = serializers.RegexField(
            r"^#[0-9a-fA-F]{6}$", required=False, error_messages={"invalid": "Use a hex colour such as #1f77b4."}
        )
        hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True, help_text="Empty: no hotkey.")

    def _label(self, request: Request, project_id: int, label_id: int, roles: frozenset[str] | None = None) -> Label:
        project, _ = access_project(user=self.user, project_id=project_id, **({"roles": roles} if roles else {}))
        label = next((label for label in label_list(project=project) if label.pk == label_id), None)
        if label is None:
            raise Http404(NO_SUCH_LABEL)
        return label

    @extend_schema(responses={200: LabelSerializer, **DENIED})
    def get(self, request: Request, project_id: int, label_id: int) -> Response:
        return Response(LabelSerializer(self._label(request, project_id, label_id)).data)

    @extend_schema(request=InputSerializer, responses={200: LabelSerializer, **REFUSED})
    def patch(self, request: Request, project_id: int, label_id: int) -> Response:
        label = self._label(request, project_id, label_id, MANAGE)
        data = validated(self.InputSerializer, request.data)
        label = label_update(
            label=label,
            name=data.get("name", label.name),
            color=data.get("color", label.color),
            hotkey=data.get("hotkey", label.hotkey),
        )
        return Response(LabelSerializer(label).data)


# --- Guidelines ------------------------------------------------------------------------------------


class GuidelineVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    change_note = serializers.CharField()
    author = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class GuidelineListApi(ApiView):
    """Every published version, newest first; the owner publishes a new one, which annotators must
    acknowledge before their next item. The answer shows the change against the previous version."""

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

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(GuidelineVersionSerializer), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id)
        self.filter_values(request)
        return self.page(request, guideline_versions(project=project), GuidelineVersionSerializer)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        previous = guideline_current(project=project)
        guideline = guideline_publish(
            project=project, author=self.user, body=data["body"], change_note=data["change_note"]
        )
        changes = diff_lines(previous.body if previous else "", guideline.body)
        out: dict[str, Any] = {
            "guideline": guideline,
            "html": render_markdown(guideline.body),
            "previous_version": previous.version if previous else None,
            "diff": [{"kind": kind, "text": text} for kind, text in changes],
        }
        return Response(self.OutputSerializer(out).data, status=status.HTTP_201_CREATED)


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
        project, _ = access_project(user=self.user, project_id=project_id)
        guideline, needs_ack = guideline_state(user=self.user, project=project)
        if guideline is None:
            raise Http404(NO_GUIDELINES)
        out = {"guideline": guideline, "html": render_markdown(guideline.body), "acknowledged": not needs_ack}
        return Response(self.OutputSerializer(out).data)


class GuidelineAcknowledgementApi(ApiView):
    """Any member: confirm having read this version, which must be the current one (409 once a newer one is out)."""

    class OutputSerializer(serializers.Serializer):
        version = serializers.IntegerField(source="guideline_version.version")
        acknowledged_at = serializers.DateTimeField()

    @extend_schema(
        request=None,
        responses={
            201: OutputSerializer,
            **CONFLICT,
            **DENIED,
            404: OpenApiResponse(ErrorSerializer, description="No such project or version."),
        },
    )
    def post(self, request: Request, project_id: int, version: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id)
        guideline = guideline_version_get(project=project, version=version)
        if guideline is None:
            raise Http404(NO_SUCH_VERSION)
        ack = guideline_acknowledge_current(user=self.user, version=guideline)
        return Response(self.OutputSerializer(ack).data, status=status.HTTP_201_CREATED)
