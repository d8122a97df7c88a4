"""Browser views: thin; parse, call one service or selector, render.

Every view starts with `access_project` / `access_item`, so outsiders get 404 and the wrong role 403.
The annotate views serve the whole page, or only the `#workspace` fragment when htmx asks: a submit
answers with the next item in the same round trip, and progress refreshes itself on an htmx event so
its counts stay off that hot path.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors, selectors_review
from .forms import (
    PREVIEW_STALE,
    GuidelinePublishForm,
    LabelForm,
    MemberForm,
    NextRoundSettingsForm,
    ProjectCreateForm,
    ProjectSettingsForm,
    add_service_error,
    annotation_value_from,
    body_digest,
)
from .guidelines import diff_lines, render_markdown
from .models import GuidelineVersion, Label, Project, TaskType
from .permissions import ANNOTATE, MANAGE, access_item, access_project
from .services import ServiceError
from .services.annotations import (
    NextItem,
    annotation_submit_and_next,
    annotation_undo,
    claim_next,
    claim_skip,
    draft_save,
    guideline_state,
)
from .services.projects import (
    DEFAULT_COLOURS,
    guideline_acknowledge,
    guideline_publish,
    label_create,
    label_update,
    membership_set_role,
    project_create,
    project_set_lease,
    project_set_overlap,
)
from .values import value_display

DRAFT_NOT_HELD = "Not saved: you no longer hold this item."
PROGRESS_EVENT = "progress-changed"


def _safe_html(markdown_text: str) -> SafeString:
    """Guideline Markdown as HTML: nh3 in `render_markdown` has already removed every unsafe tag and URL."""
    return mark_safe(render_markdown(markdown_text))  # noqa: S308 - sanitised by nh3 just above


# --- Projects ------------------------------------------------------------------------------------


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    memberships = selectors.project_memberships_for_user(user=request.user)
    return render(request, "annotation/project_list.html", {"memberships": memberships})


@login_required
@require_http_methods(["GET", "POST"])
def project_create_view(request: HttpRequest) -> HttpResponse:
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
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created.")
            return redirect("project-detail", project.pk)
    status = 400 if form.is_bound else 200
    return render(request, "annotation/project_create.html", {"form": form}, status=status)


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project, role = access_project(user=request.user, project_id=project_id)
    can_annotate = role in ANNOTATE
    guideline, needs_ack = guideline_state(user=request.user, project=project)
    context = {
        "project": project,
        "role": role,
        "can_annotate": can_annotate,
        "can_manage": role in MANAGE,
        "progress": selectors.project_progress(project=project),
        "mine": selectors.annotator_progress(user=request.user, project=project) if can_annotate else None,
        "labels": selectors.label_list(project=project),
        "guideline": guideline,
        "needs_ack": needs_ack,
        "members": selectors.membership_list(project=project),
    }
    return render(request, "annotation/project_detail.html", context)


# --- Settings (owner) ----------------------------------------------------------------------------


def _settings_response(
    request: HttpRequest,
    project: Project,
    *,
    settings_form: ProjectSettingsForm | None = None,
    label_forms: dict[int, LabelForm] | None = None,
    new_label_form: LabelForm | None = None,
    member_form: MemberForm | None = None,
    round_form: NextRoundSettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The settings page, with any bound form that failed shown in place of its blank one."""
    labels = selectors.label_list(project=project)
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
        or ProjectSettingsForm(initial={"overlap": project.overlap, "lease_seconds": project.lease_seconds}),
        "label_rows": label_rows,
        "new_label_form": new_label_form
        or LabelForm(prefix="new", initial={"color": DEFAULT_COLOURS[len(labels) % len(DEFAULT_COLOURS)]}),
        "has_labels": project.task_type != TaskType.INSTRUCTION,
        "members": selectors.membership_list(project=project),
        "member_form": member_form or MemberForm(),
        "roles": MemberForm.base_fields["role"].choices,
        "round_form": round_form
        or NextRoundSettingsForm(
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


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    if request.method == "GET":
        return _settings_response(request, project)
    form = ProjectSettingsForm(request.POST)
    if form.is_valid():
        try:
            if form.cleaned_data["overlap"] != project.overlap:
                project_set_overlap(project=project, overlap=form.cleaned_data["overlap"])
            if form.cleaned_data["lease_seconds"] != project.lease_seconds:
                project_set_lease(project=project, lease_seconds=form.cleaned_data["lease_seconds"])
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("project-settings", project.pk)
    return _settings_response(request, project, settings_form=form, status=400)


@login_required
@require_POST
def label_create_view(request: HttpRequest, project_id: int) -> HttpResponse:
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
def label_update_view(request: HttpRequest, project_id: int, label_id: int) -> HttpResponse:
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


@login_required
@require_POST
def member_set_view(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    form = MemberForm(request.POST)
    if form.is_valid():
        try:
            membership = membership_set_role(
                project=project, username=form.cleaned_data["username"], role=form.cleaned_data["role"]
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"{membership.user.username} is now {membership.get_role_display().lower()}.")
            return redirect("project-settings", project.pk)
    return _settings_response(request, project, member_form=form, status=400)


# --- Guidelines ----------------------------------------------------------------------------------


def _ack_context(request: HttpRequest, project: Project, guideline: GuidelineVersion) -> dict[str, Any]:
    """What an annotator reads before acknowledging: the diff since their last acknowledged version, or all of it."""
    last = selectors.guideline_last_acknowledged(user=request.user, project=project)
    return {
        "ack_guideline": guideline,
        "ack_last": last,
        "ack_diff": diff_lines(last.body, guideline.body) if last else None,
        "ack_html": _safe_html(guideline.body),
    }


@login_required
def guideline_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    """The current version (or ?v=N), its change against the previous one, the history, and the ack prompt."""
    project, role = access_project(user=request.user, project_id=project_id)
    versions = selectors.guideline_versions(project=project)
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
        "shown_html": _safe_html(shown.body) if shown else "",
        "previous": previous,
        "changes": diff_lines(previous.body, shown.body) if previous and shown else None,
    }
    # Only those who annotate are held to the acknowledgement (claim_next asks for it); others just read.
    if role in ANNOTATE and current is not None and guideline_state(user=request.user, project=project)[1]:
        context.update(
            _ack_context(request, project, current), ack_compact=True, ack_next=reverse("annotate", args=[project.pk])
        )
    return render(request, "annotation/guideline_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def guideline_publish_view(request: HttpRequest, project_id: int) -> HttpResponse:
    """Publishing takes two steps: a preview of the diff to the current version, then a confirm of that exact text."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    versions = selectors.guideline_versions(project=project)
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
        preview_html=_safe_html(body),
        preview_diff=preview_diff,
        preview_changed=any(kind != "same" for kind, _ in preview_diff),
        next_version=(current.version if current else 0) + 1,
    )
    return render(request, "annotation/guideline_publish.html", context)


@login_required
@require_POST
def guideline_ack_view(request: HttpRequest, project_id: int) -> HttpResponse:
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


# --- Annotate ------------------------------------------------------------------------------------


def _next_for(request: HttpRequest, project: Project, *, prefer_item_id: int | None = None) -> NextItem:
    """The item to show: the one the user asked for while they still hold it, else their next claim."""
    state = claim_next(annotator=request.user, project=project)
    if state.needs_ack or prefer_item_id is None or (state.item is not None and state.item.pk == prefer_item_id):
        return state
    held = selectors.claim_active_get(user=request.user, project=project, item_id=prefer_item_id)
    return NextItem(claim=held, guideline=state.guideline, needs_ack=False) if held else state


def _selected_names(value: dict[str, Any]) -> list[str]:
    if "label" in value:
        return [value["label"]]
    return list(value.get("labels", []))


def _workspace_context(
    request: HttpRequest,
    project: Project,
    state: NextItem,
    labels: list[Label],
    *,
    error: str = "",
    flash: str = "",
    posted: dict[str, Any] | None = None,
    skip_open: bool = False,
) -> dict[str, Any]:
    """Everything `_annotate_workspace.html` shows: the item with the user's own draft, or the ack panel, or done.

    `posted` re-shows what the user just sent when the item stays on screen after a refusal. Blind by
    construction: nothing here reads another annotator's annotation or draft.
    """
    item = state.item
    context: dict[str, Any] = {
        "project": project,
        "labels": labels,
        "item": item,
        "claim": state.claim,
        "needs_ack": state.needs_ack,
        "error": error,
        "flash": flash,
        "skip_open": skip_open,
        "is_instruction": project.task_type == TaskType.INSTRUCTION,
        "is_multi": project.task_type == TaskType.MULTI_LABEL,
    }
    if state.needs_ack and state.guideline is not None:
        context.update(_ack_context(request, project, state.guideline))
        context["ack_next"] = reverse("annotate", args=[project.pk])
    if item is None:
        return context
    # A pre-label (imported, or the model's from the last round) only when the owner shows them: it biases
    # blind labelling. The item row is already loaded, so this costs no query.
    prelabel = item.prelabel if project.show_prelabels and isinstance(item.prelabel, dict) else None
    if prelabel:
        context["prelabel"] = value_display(prelabel)
    if posted is None:
        # A claim made just now is the user's first hold on the item, so it cannot have a draft.
        draft = None if state.fresh else selectors.draft_get(user=request.user, item=item)
        blank = {"value": prelabel or {}}
        posted = {"value": draft.value, "unsure": draft.unsure, "note": draft.note} if draft else blank
    if not state.fresh:  # a sent-back item comes back through its old claim, never a fresh one
        context["review_comment"] = selectors_review.send_back_comment(item=item)
    value = posted["value"]
    context.update(
        selected=_selected_names(value),
        response=value.get("response", item.response) if context["is_instruction"] else "",
        unsure=posted.get("unsure", False),
        note=posted.get("note", ""),
        has_draft=(bool(value) and value is not prelabel) or bool(posted.get("note")),
    )
    return context


def _workspace_response(
    request: HttpRequest, project: Project, role: str, state: NextItem, labels: list[Label], *, status: int = 200, **kw
) -> HttpResponse:
    """The `#workspace` fragment for htmx, or the whole annotate page (guidelines beside it, progress above it)."""
    context = _workspace_context(request, project, state, labels, **kw)
    if request.htmx:
        # htmx swaps 2xx only: a refusal is still a page to show, its message inside.
        return render(request, "annotation/_annotate_workspace.html", context)
    guideline = state.guideline
    context.update(
        role=role,
        guideline=guideline,
        guideline_html=_safe_html(guideline.body) if guideline else "",
        progress=selectors.project_progress(project=project),
        mine=selectors.annotator_progress(user=request.user, project=project),
    )
    return render(request, "annotation/item_annotate.html", context, status=status)


@login_required
def annotate(request: HttpRequest, project_id: int) -> HttpResponse:
    """The annotate page (or, for htmx, its workspace): the claimed item, `?item=<id>` to return to one held."""
    project, role = access_project(user=request.user, project_id=project_id, roles=ANNOTATE)
    wanted = request.GET.get("item", "")
    state = _next_for(request, project, prefer_item_id=int(wanted) if wanted.isdigit() else None)
    return _workspace_response(request, project, role, state, selectors.label_list(project=project))


def _after_write(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Tell the page that counts changed: the progress fragment refreshes itself, off this request."""
    if request.htmx:
        response["HX-Trigger"] = PROGRESS_EVENT
    return response


@login_required
@require_POST
def annotate_submit(request: HttpRequest, project_id: int, item_id: int) -> HttpResponse:
    """Store the label and answer with the next item: one round trip, a constant number of queries."""
    item, role = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
    project = item.project
    labels = selectors.label_list(project=project)
    value = annotation_value_from(request.POST, project.task_type)
    unsure, note = bool(request.POST.get("unsure")), request.POST.get("note", "")
    try:
        _, state = annotation_submit_and_next(
            annotator=request.user,
            item=item,
            value=value,
            label_names=[label.name for label in labels],
            unsure=unsure,
            note=note,
        )
    except ServiceError as exc:
        state = _next_for(request, project, prefer_item_id=item.pk)
        same = state.item is not None and state.item.pk == item.pk
        posted = {"value": value, "unsure": unsure, "note": note} if same else None
        return _workspace_response(request, project, role, state, labels, error=exc.message, posted=posted, status=400)
    if not request.htmx:
        return redirect("annotate", project.pk)
    flash = f"Saved item #{item.pk}."
    return _after_write(request, _workspace_response(request, project, role, state, labels, flash=flash))


@login_required
@require_POST
def annotate_skip(request: HttpRequest, project_id: int, item_id: int) -> HttpResponse:
    """Give the item back with a reason; the annotator is not offered it again."""
    item, role = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
    project = item.project
    labels = selectors.label_list(project=project)
    try:
        claim_skip(annotator=request.user, item=item, reason=request.POST.get("reason", ""))
    except ServiceError as exc:
        state = _next_for(request, project, prefer_item_id=item.pk)
        skip_open = state.item is not None and state.item.pk == item.pk
        return _workspace_response(
            request, project, role, state, labels, error=exc.message, skip_open=skip_open, status=400
        )
    if not request.htmx:
        return redirect("annotate", project.pk)
    state = claim_next(annotator=request.user, project=project)
    flash = f"Skipped item #{item.pk}."
    return _after_write(request, _workspace_response(request, project, role, state, labels, flash=flash))


@login_required
@require_POST
def annotate_undo(request: HttpRequest, project_id: int) -> HttpResponse:
    """Take back the last submission while nobody has reviewed it: its item comes back with the value as a draft."""
    project, role = access_project(user=request.user, project_id=project_id, roles=ANNOTATE)
    labels = selectors.label_list(project=project)
    try:
        claim = annotation_undo(annotator=request.user, project=project)
    except ServiceError as exc:
        state = claim_next(annotator=request.user, project=project)
        return _workspace_response(request, project, role, state, labels, error=exc.message, status=400)
    if not request.htmx:
        return redirect(f"{reverse('annotate', args=[project.pk])}?item={claim.item_id}")
    state = NextItem(claim=claim, guideline=None, needs_ack=False)
    flash = f"Item #{claim.item_id} is back: change it and submit again."
    return _after_write(request, _workspace_response(request, project, role, state, labels, flash=flash))


@login_required
@require_POST
def annotate_draft(request: HttpRequest, project_id: int, item_id: int) -> HttpResponse:
    """Autosave of the form as it is, valid or not yet; only while the user holds the item."""
    item, _ = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
    project = item.project
    if selectors.claim_active_get(user=request.user, project=project, item_id=item.pk) is None:
        refusal = format_html('<span class="error">{}</span>', DRAFT_NOT_HELD)
        return HttpResponse(refusal, status=200 if request.htmx else 409)
    draft = draft_save(
        annotator=request.user,
        item=item,
        value=annotation_value_from(request.POST, project.task_type),
        unsure=bool(request.POST.get("unsure")),
        note=request.POST.get("note", ""),
    )
    if not request.htmx:
        return redirect(f"{reverse('annotate', args=[project.pk])}?item={item.pk}")
    return HttpResponse(format_html("Draft saved {}", draft.updated_at.strftime("%H:%M:%S")))


@login_required
def annotate_progress(request: HttpRequest, project_id: int) -> HttpResponse:
    """The progress strip alone: the page asks for it after each write (the `progress-changed` event)."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=ANNOTATE)
    context = {
        "project": project,
        "progress": selectors.project_progress(project=project),
        "mine": selectors.annotator_progress(user=request.user, project=project),
    }
    return render(request, "annotation/_annotate_progress.html", context)
