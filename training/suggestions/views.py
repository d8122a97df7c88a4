"""Browser pages of pre-labelling: start a suggestion run, follow it, compare it with the baselines, use it.

Owners start runs and turn their uses on; reviewers may look at runs and figures; annotators get 403 (they stay
blind to model suggestions unless the owner shows them as pre-labels) and people outside the project 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.models import Project
from annotation.permissions import MANAGE, REVIEW, access_project
from core import durations
from core.errors import ServiceError
from core.http import AuthedRequest
from core.paging import page_or_404
from training.models import SuggestionMethod, SuggestionRun
from training.suggestions import selectors
from training.suggestions import services as suggestions

SUGGESTIONS_PER_PAGE = 50


def _run_or_404(*, project: Project, run_id: int) -> SuggestionRun:
    run = selectors.suggestion_run_get(project=project, run_id=run_id)
    if run is None:
        raise Http404("No such suggestion run.")
    return run


def _list_context(project: Project, role: str, *, error: str = "", posted: dict[str, str] | None = None) -> dict:
    suggestions.suggestion_runs_abandoned_fail(project=project)
    runs = list(selectors.suggestion_run_list(project=project)[:50])
    return {
        "project": project,
        "role": role,
        "can_manage": role in MANAGE,
        "runs": runs,
        "active": next((run for run in runs if run.is_active), None),
        "methods": suggestions.methods_available(project=project),
        "defaults": {m.value: suggestions.DEFAULT_ITEMS[m] for m in SuggestionMethod},
        "limits": {m.value: suggestions.MAX_ITEMS[m] for m in SuggestionMethod},
        "error": error,
        "posted": posted or {},
    }


@login_required
def suggestion_list(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The runs so far and the form to start one."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    return render(request, "training/suggestion_list.html", _list_context(project, role))


@login_required
@require_POST
def suggestion_run_start(request: AuthedRequest, project_id: int) -> HttpResponse:
    project, role = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    raw = request.POST.get("max_items", "").strip()
    method = request.POST.get("method", "")
    try:
        if raw and not raw.isdigit():
            limits = {str(m): high for m, high in suggestions.MAX_ITEMS.items()}
            raise ServiceError(suggestions.BAD_MAX_ITEMS.format(high=limits.get(method, "the limit")))
        run = suggestions.suggestion_run_start(
            project=project, user=request.user, method=method, max_items=int(raw) if raw else None
        )
    except ServiceError as exc:
        context = _list_context(project, role, error=exc.message, posted={"method": method, "max_items": raw})
        return render(request, "training/suggestion_list.html", context, status=400)
    return redirect(reverse("suggestion-run-detail", args=[project.pk, run.pk]))


def _detail_context(project: Project, role: str, run: SuggestionRun) -> dict[str, Any]:
    return {
        "project": project,
        "role": role,
        "can_manage": role in MANAGE,
        "run": run,
        "provenance": selectors.provenance(run),
        "queue_place": suggestions.suggestion_run_queue_place(run),
        "eta": durations.left(run.eta_seconds) if run.is_active else "",
        "rows": selectors.comparison_rows(run),
        "evaluation": run.summary.get("evaluation") or {},
    }


@login_required
def suggestion_run_detail(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    """A run: progress (the status fragment polls itself while active), accuracy beside the baselines, its uses and
    its suggestions, least sure first."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    run = _run_or_404(project=project, run_id=run_id)
    context = _detail_context(project, role, run)
    if request.htmx:
        response = render(request, "training/_suggestion_status.html", context)
        if not run.is_active:
            response["HX-Refresh"] = "true"  # it just ended: load the whole page, figures and suggestions included
        return response
    context["page"] = page_or_404(selectors.suggestion_list(run=run), SUGGESTIONS_PER_PAGE, request.GET.get("page"))
    return render(request, "training/suggestion_detail.html", context)


@login_required
@require_POST
def suggestion_run_apply(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    """The run's two switches as posted: use for ordering, show as pre-labels (both unchecked = off)."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    run = _run_or_404(project=project, run_id=run_id)
    try:
        run = suggestions.suggestion_run_apply(
            run=run,
            use_for_ordering=bool(request.POST.get("use_for_ordering")),
            show_as_prelabels=bool(request.POST.get("show_as_prelabels")),
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        ordering = "on" if run.used_for_ordering else "off"
        shown = "shown to annotators" if run.shown_as_prelabels else "not shown to annotators"
        messages.success(request, f"Run {run.pk}: ordering {ordering}; its suggestions are {shown}.")
    return redirect(reverse("suggestion-run-detail", args=[project.pk, run.pk]))
