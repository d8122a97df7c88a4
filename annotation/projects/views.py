"""Browser pages of projects: list, create, detail, settings, labels, members and guidelines."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from annotation.annotate.selectors import annotator_progress, project_progress
from annotation.annotate.services import (
    guideline_state,
)
from annotation.models import GuidelineVersion, Label, Membership, Project, Role
from annotation.permissions import ANNOTATE, MANAGE, REVIEW, access_project
from annotation.projects.forms import (
    PREVIEW_STALE,
    GuidelinePublishForm,
    LabelForm,
    MemberForm,
    ProjectCreateForm,
    ProjectSettingsForm,
    body_digest,
)
from annotation.projects.guideline_pages import ack_context, guideline_html
from annotation.projects.guidelines import diff_lines
from annotation.projects.middleware import MUST_CHANGE_PASSWORD_SESSION_KEY
from annotation.projects.selectors import (
    account_must_change_password,
    guideline_versions,
    label_list,
    membership_list,
    project_cards_for_user,
    user_may_start_projects,
)
from annotation.projects.services import (
    DEFAULT_COLOURS,
    USER_NOT_FOUND,
    USERNAME_TAKEN,
    account_password_changed,
    guideline_acknowledge,
    guideline_publish,
    label_create,
    label_update,
    member_add,
    membership_remove,
    membership_set_role,
    project_create,
    project_round_settings_set,
    project_routing_check,
    project_routing_set,
    project_set_lease,
    project_set_overlap,
    project_set_slice_fields,
    project_span_overlap_set,
    routing_settings,
)
from annotation.review.selectors import open_review_tasks
from core.errors import ServiceError
from core.forms import add_service_error
from core.http import AuthedRequest
from core.ratelimit import client_address, login_failed, login_refused, refusal_message
from training.rounds.forms import NextRoundSettingsForm


@login_required
def project_list(request: AuthedRequest) -> HttpResponse:
    cards = project_cards_for_user(user=request.user)
    context = {"cards": cards, "may_start": user_may_start_projects(user=request.user, cards=cards)}
    return render(request, "annotation/project_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def project_create_view(request: AuthedRequest) -> HttpResponse:
    """Any logged-in user may start a project; they become its owner."""
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = project_create(
                owner=request.user,
                name=data["name"],
                task_type=data["task_type"],
                labels=data["labels"],
                description=data["description"],
                goal_metric=data["goal_metric"] or None,
                overlap=data["overlap"],
                lease_seconds=data["lease_seconds"],
                guidelines=data["guidelines"],
                allow_overlapping_spans=data["allow_overlapping_spans"],
                routing_policy=data["routing_policy"] or None,
                routing_budget=data["routing_budget"],
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created.")
            return redirect("project-detail", project.pk)
    status = 400 if form.is_bound else 200
    return render(request, "annotation/project_create.html", {"form": form}, status=status)


@login_required
def project_detail(request: AuthedRequest, project_id: int) -> HttpResponse:
    project, role = access_project(user=request.user, project_id=project_id)
    can_annotate = role in ANNOTATE
    guideline, needs_ack = guideline_state(user=request.user, project=project)
    mine = annotator_progress(user=request.user, project=project) if can_annotate else None
    context = {
        "project": project,
        "role": role,
        "can_annotate": can_annotate,
        "can_manage": role in MANAGE,
        "progress": project_progress(project=project),
        "mine": mine,
        # The header's first button is the next step: annotate while items are open to you, else review, else
        # (owners) snapshot; the other steps stay one click away in the project card.
        "annotate_open": bool(mine and (mine.open_for_me or mine.holding)),
        "open_reviews": open_review_tasks(project=project, user=request.user, role=role).count()
        if role in REVIEW
        else 0,
        "labels": label_list(project=project),
        "guideline": guideline,
        "needs_ack": needs_ack,
        "members": membership_list(project=project),
    }
    return render(request, "annotation/project_detail.html", context)


# The tag of a member change's confirmation, which the settings page shows in its Members section.
MEMBERS_MESSAGE_TAG = "members"
MEMBER_ROLE_SET = "User “{username}” is now {role} of this project."
MEMBER_CREATED = "Account “{username}” created and added as {role} of this project."
# The services' refusals, reworded for the page: they name the box to tick, where the API's name its field.
MEMBER_UNKNOWN = (
    "No account is called “{username}”. Check the spelling, or tick “Create this account” to create it "
    "with a one-time password."
)
MEMBER_TAKEN = "An account called “{username}” already exists: untick “Create this account” to add it."


def _settings_response(
    request: AuthedRequest,
    project: Project,
    *,
    settings_form: ProjectSettingsForm | None = None,
    label_forms: dict[int, LabelForm] | None = None,
    new_label_form: LabelForm | None = None,
    member_form: MemberForm | None = None,
    round_form: NextRoundSettingsForm | None = None,
    member_notices: list[str] | None = None,
    new_account: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The settings page, with any bound form that failed shown in place of its blank one.

    A member change's confirmation is shown in the Members section, where the page lands, not at the top.
    """
    flashes = list(messages.get_messages(request))
    in_members = [m for m in flashes if MEMBERS_MESSAGE_TAG in (m.extra_tags or "").split()]
    labels = label_list(project=project)
    label_forms = label_forms or {}
    label_rows = [
        (
            label,
            label_forms.get(label.pk)
            or LabelForm(
                prefix=f"label-{label.pk}", initial={"name": label.name, "color": label.color, "hotkey": label.hotkey}
            ),
        )
        for label in labels
    ]
    context = {
        "project": project,
        "settings_form": settings_form
        or ProjectSettingsForm(
            initial={
                "overlap": project.overlap,
                "lease_seconds": project.lease_seconds,
                "routing_policy": project.routing_policy,
                "routing_budget": project.routing_budget,
                "audit_rate": project.audit_rate,
                "slice_fields": ", ".join(project.slice_fields or []),
                "allow_overlapping_spans": project.allow_overlapping_spans,
            }
        ),
        "label_rows": label_rows,
        "new_label_form": new_label_form
        or LabelForm(prefix="new", initial={"color": DEFAULT_COLOURS[len(labels) % len(DEFAULT_COLOURS)]}),
        "has_labels": project.task_kind.has_labels,
        "has_spans": project.task_kind.needs_text,
        "members": membership_list(project=project),
        "member_form": member_form or MemberForm(),
        "member_notices": [str(m) for m in in_members] + (member_notices or []),
        "page_messages": [m for m in flashes if m not in in_members],
        "new_account": new_account,
        "roles": Role.choices,
        "round_form": round_form
        or NextRoundSettingsForm(
            generates=not project.task_kind.has_labels,
            initial={
                "queue_order": project.queue_order,
                "random_share": project.random_share,
                "disagreement_confidence": project.disagreement_confidence,
                "show_prelabels": project.show_prelabels,
                "show_model_confidence": project.show_model_confidence,
                "rating_criteria": "\n".join(project.rating_criteria or []),
            }
        ),
    }
    return render(request, "annotation/project_settings.html", context, status=status)


# The settings form's hidden marker that it showed the "Spans may overlap" box.
SPAN_OVERLAP_SHOWN = "span_overlap_shown"


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request: AuthedRequest, project_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    if request.method == "GET":
        return _settings_response(request, project)
    form = ProjectSettingsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        before = routing_settings(project)
        try:
            # One transaction: a setting refused for what the project holds (span overlaps, slice fields) changes
            # nothing, the other settings of the same post included. Those two go first.
            with transaction.atomic():
                # An unticked box posts nothing: only a post from a form that showed it (SPAN_OVERLAP_SHOWN) may
                # turn overlaps off, so an older client's post never does it silently.
                if project.task_kind.needs_text and SPAN_OVERLAP_SHOWN in request.POST:
                    project_span_overlap_set(
                        project=project, allow=data["allow_overlapping_spans"], user=request.user
                    )
                if data["slice_fields"] != list(project.slice_fields or []):
                    project_set_slice_fields(project=project, fields=data["slice_fields"])
                if data["overlap"] != project.overlap:
                    project_set_overlap(project=project, overlap=data["overlap"])
                if data["lease_seconds"] != project.lease_seconds:
                    project_set_lease(project=project, lease_seconds=data["lease_seconds"])
                project_routing_set(
                    project=project,
                    routing_policy=data.get("routing_policy") or None,
                    routing_budget=data.get("routing_budget"),
                    audit_rate=data.get("audit_rate"),
                )
                project_routing_check(project=project, before=before)
        except ServiceError as exc:
            project.refresh_from_db()  # the rolled-back values must not show as saved
            add_service_error(form, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("project-settings", project.pk)
    return _settings_response(request, project, settings_form=form, status=400)


@login_required
@require_POST
def label_create_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    form = LabelForm(request.POST, prefix="new")
    if form.is_valid():
        data = form.cleaned_data
        try:
            label = label_create(project=project, name=data["name"], color=data["color"], hotkey=data["hotkey"] or None)
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Label “{label.name}” added.")
            return redirect("project-settings", project.pk)
    return _settings_response(request, project, new_label_form=form, status=400)


@login_required
@require_POST
def label_update_view(request: AuthedRequest, project_id: int, label_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    label = get_object_or_404(Label, project=project, pk=label_id)
    form = LabelForm(request.POST, prefix=f"label-{label.pk}")
    if form.is_valid():
        data = form.cleaned_data
        try:
            label_update(label=label, name=data["name"], color=data["color"] or label.color, hotkey=data["hotkey"])
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Label “{label.name}” saved.")
            return redirect("project-settings", project.pk)
    return _settings_response(request, project, label_forms={label.pk: form}, status=400)


def _role_phrase(membership: Membership) -> str:
    """The role with its article: "an annotator", "a reviewer", "an owner"."""
    name = membership.get_role_display().lower()
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _member_error(exc: ServiceError, *, username: str) -> ServiceError:
    if exc.message == USER_NOT_FOUND:
        return ServiceError(MEMBER_UNKNOWN.format(username=username), field="username")
    if exc.message == USERNAME_TAKEN.format(username=username):
        return ServiceError(MEMBER_TAKEN.format(username=username), field="username")
    return exc


@login_required
@require_POST
def member_set_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    """Add a member (an existing account, or one created here) or change a member's role.

    A created account's one-time password is shown on this answer only: never stored in a message or the session.
    """
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    form = MemberForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        username = data["username"].strip()
        try:
            if data["create"]:
                membership, password = member_add(
                    project=project,
                    username=username,
                    role=data["role"],
                    added_by=request.user,
                    create=True,
                    email=data["email"],
                )
            else:
                membership = membership_set_role(project=project, username=username, role=data["role"])
                password = None
        except ServiceError as exc:
            add_service_error(form, _member_error(exc, username=username))
        else:
            if password is not None:
                notice = MEMBER_CREATED.format(username=membership.user.get_username(), role=_role_phrase(membership))
                response = _settings_response(
                    request,
                    project,
                    member_notices=[notice],
                    new_account={"username": membership.user.get_username(), "password": password},
                )
                add_never_cache_headers(response)  # the password is not kept in the browser's cache
                return response
            notice = MEMBER_ROLE_SET.format(username=membership.user.get_username(), role=_role_phrase(membership))
            messages.success(request, notice, extra_tags=MEMBERS_MESSAGE_TAG)
            return redirect(reverse("project-settings", args=[project.pk]) + "#members")
    return _settings_response(request, project, member_form=form, status=400)


@login_required
@require_POST
def member_remove_view(request: AuthedRequest, project_id: int, user_id: int) -> HttpResponse:
    """Take a member out of the project (their past work stays; the last owner cannot leave), as the API's DELETE."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    membership = get_object_or_404(Membership.objects.select_related("user"), project=project, user_id=user_id)
    try:
        membership_remove(membership=membership)
    except ServiceError as exc:
        messages.error(request, exc.message, extra_tags=MEMBERS_MESSAGE_TAG)
    else:
        messages.success(
            request, MEMBER_REMOVED.format(username=membership.user.get_username()), extra_tags=MEMBERS_MESSAGE_TAG
        )
    return redirect(reverse("project-settings", args=[project.pk]) + "#members")


MEMBER_REMOVED = "User “{username}” is no longer a member of this project; their past work stays."


@login_required
@require_POST
def round_settings_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The settings page's "Next round" form: the options the next round's plan page starts from."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    form = NextRoundSettingsForm(request.POST, generates=not project.task_kind.has_labels)
    if form.is_valid():
        try:
            project_round_settings_set(project=project, **form.cleaned_data)
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, "Next-round settings saved.")
            return redirect(reverse("project-settings", args=[project.pk]) + "#next-round")
    return _settings_response(request, project, round_form=form, status=400)


@login_required
def guideline_detail(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The current version (or ?v=N), its change against the previous one, the history, and the ack prompt."""
    project, role = access_project(user=request.user, project_id=project_id)
    versions = guideline_versions(project=project)
    current = versions[0] if versions else None
    shown = current
    wanted = request.GET.get("v", "")
    if wanted.isdigit():
        shown = next((v for v in versions if v.version == int(wanted)), current)
    previous = next((v for v in versions if shown and v.version < shown.version), None)
    context: dict[str, Any] = {
        "project": project,
        "role": role,
        "can_manage": role in MANAGE,
        "versions": versions,
        "current": current,
        "shown": shown,
        "shown_html": guideline_html(shown.body) if shown else "",
        "previous": previous,
        "changes": diff_lines(previous.body, shown.body) if previous and shown else None,
    }
    # Only those who annotate are held to the acknowledgement (claim_next asks for it); others just read.
    if role in ANNOTATE and current is not None and guideline_state(user=request.user, project=project)[1]:
        prompt = ack_context(user=request.user, project=project, guideline=current)
        context.update(prompt, ack_compact=True, ack_next=reverse("annotate", args=[project.pk]))
    return render(request, "annotation/guideline_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def guideline_publish_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    """Publishing takes two steps: a preview of the diff to the current version, then a confirm of that exact text."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    versions = guideline_versions(project=project)
    current = versions[0] if versions else None
    form = GuidelinePublishForm(request.POST or None, initial={"body": current.body if current else ""})
    context: dict[str, Any] = {"project": project, "form": form, "current": current}
    if request.method == "GET":
        return render(request, "annotation/guideline_publish.html", context)
    if not form.is_valid():
        return render(request, "annotation/guideline_publish.html", context, status=400)
    body, digest = form.cleaned_data["body"], body_digest(form.cleaned_data["body"])
    if request.POST.get("action") == "publish":
        if form.cleaned_data["previewed"] == digest:
            try:
                version = guideline_publish(
                    project=project, author=request.user, body=body, change_note=form.cleaned_data["change_note"]
                )
            except ServiceError as exc:
                add_service_error(form, exc)
                return render(request, "annotation/guideline_publish.html", context, status=400)
            messages.success(request, f"Guidelines v{version.version} published: annotators will be asked to read it.")
            return redirect("guideline-detail", project.pk)
        context["stale"] = PREVIEW_STALE
    data = request.POST.copy()
    data["previewed"] = digest
    preview_diff = diff_lines(current.body if current else "", body)
    context.update(
        form=GuidelinePublishForm(data),
        preview_html=guideline_html(body),
        preview_diff=preview_diff,
        preview_changed=any(kind != "same" for kind, _ in preview_diff),
        next_version=(current.version if current else 0) + 1,
    )
    return render(request, "annotation/guideline_publish.html", context)


@login_required
@require_POST
def guideline_ack_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    """Acknowledge the version the reader was shown (a newer one published meanwhile will be asked for next)."""
    project, role = access_project(user=request.user, project_id=project_id)
    version_id = request.POST.get("version", "")
    version = get_object_or_404(GuidelineVersion, project=project, pk=int(version_id) if version_id.isdigit() else 0)
    guideline_acknowledge(user=request.user, version=version)
    messages.success(request, f"Thanks: you acknowledged guidelines version {version.version}.")
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("annotate" if role in ANNOTATE else "guideline-detail", project.pk)


class SignInView(auth_views.LoginView):
    """Django's sign-in, which also notes in the session whether the user must first choose a password.

    Kept in the session so the middleware that enforces it costs no query on the pages that follow.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Past the failure limit nothing is checked, the right password included: a 429 that says so."""
        if login_refused(username=request.POST.get("username", ""), address=client_address(request)):
            context = self.get_context_data(form=self.get_form(), refused=refusal_message())
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        login_failed(username=self.request.POST.get("username", ""), address=client_address(self.request))
        return super().form_invalid(form)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        if account_must_change_password(user=form.get_user()):
            self.request.session[MUST_CHANGE_PASSWORD_SESSION_KEY] = True
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change; a user created with a one-time password is free to go on once it succeeds."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("project-list")

    def get_form(self, form_class: Any = None) -> PasswordChangeForm:
        form = super().get_form(form_class)
        if self.request.session.get(MUST_CHANGE_PASSWORD_SESSION_KEY):  # "old" reads oddly for a password just given
            form.fields["old_password"].label = "One-time password"
        return form

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        account_password_changed(user=form.user)
        self.request.session.pop(MUST_CHANGE_PASSWORD_SESSION_KEY, None)
        messages.success(self.request, "Password changed.")
        return response
