"""Browser pages for rounds: the plan of the next round (owners), starting it, and the rounds so far.

Owners see the plan and start the next round; reviewers see the rounds page only; annotators get 403
(they stay blind to model outputs) and people outside the project 404. The plan page's options form asks
for its preview fragment (`#plan-preview`) on every change: the plan is a selector and changes nothing.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.models import Project, QueueOrder
from annotation.permissions import MANAGE, REVIEW, access_project
from core.errors import ServiceError
from core.http import AuthedRequest
from training.rounds import selectors as rounds
from training.rounds.charts import METRIC_NAMES, rounds_charts, rounds_worse
from training.rounds.options import plan_options_default, plan_options_parse
from training.rounds.selectors import runs_succeeded
from training.rounds.services import round_advance as round_advance_apply


def _plan_context(project: Project, data: dict) -> tuple[dict, int]:
    context: dict = {
        "project": project,
        "runs": list(runs_succeeded(project=project)[:50]),
        "queue_orders": QueueOrder.choices,
        "kind": project.task_kind,
        "error": "",
        "error_field": "",
    }
    try:
        options = plan_options_parse(project=project, data=data)
        plan = rounds.round_plan(project=project, options=options)
    except ServiceError as exc:
        options = plan_options_default(project=project)
        context.update(error=exc.message, error_field=exc.field or "")
        plan = rounds.round_plan(project=project, options=options)
        status = 400
    else:
        status = 200
    context.update(options=options, plan=plan.summary(), current=plan.round, chosen_run=plan.run)
    return context, status


@login_required
def round_plan(request: AuthedRequest, project_id: int) -> HttpResponse:
    """What starting the next round would change, for the options in the query string."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    context, status = _plan_context(project, request.GET)
    if request.htmx:
        # htmx swaps 2xx only: a refused option is still a preview to show, its message inside.
        return render(request, "training/_round_plan.html", context)
    return render(request, "training/round_plan.html", context, status=status)


def _round_confirm(request: AuthedRequest, project: Project) -> HttpResponse:
    """The step before starting a round: what it will change, in numbers, and the options it will save."""
    context, status = _plan_context(project, request.POST)
    if status != 200:
        return render(request, "training/round_plan.html", context, status=status)
    plan = context["plan"]
    context.update(
        labels_changed=plan["corrections"]["decide"] + plan["examples"]["decide"],
        to_review=plan["corrections"]["review"] + plan["label_errors"]["count"],
        options_posted=[(key, value) for key, value in request.POST.items() if key in CONFIRM_FIELDS],
        queue_order_name=QueueOrder(context["options"].queue_order).label,
    )
    return render(request, "training/round_confirm.html", context)


# The plan form's fields, carried from the plan page through the confirmation unchanged.
CONFIRM_FIELDS = ("round", "run", "queue_order", "random_share", "disagreement_confidence", "min_rating", "prelabels")


@login_required
@require_POST
def round_advance(request: AuthedRequest, project_id: int) -> HttpResponse:
    """Apply the plan for the options posted, once the owner confirmed what it changes (`confirm=1`); a second
    click finds the round closed and does nothing more."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    raw = request.POST.get("round", "")
    if request.POST.get("confirm") != "1":
        return _round_confirm(request, project)
    try:
        options = plan_options_parse(project=project, data=request.POST)
        result = round_advance_apply(
            project=project, user=request.user, options=options, round_number=int(raw) if raw.isdigit() else None
        )
    except ServiceError as exc:
        context, _ = _plan_context(project, request.POST)
        context.update(error=exc.message, error_field=exc.field or "")
        return render(request, "training/round_plan.html", context, status=400)
    if result.applied:
        messages.success(request, f"Round {result.opened.number} started: round {result.closed.number} is closed.")
    else:
        messages.info(request, f"Round {result.closed.number} was already closed; nothing more was changed.")
    return redirect(reverse("round-list", args=[project.pk]))


@login_required
def round_list(request: AuthedRequest, project_id: int) -> HttpResponse:
    """Every round: its guidelines, snapshot, runs, figures and changes, charted across rounds."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    all_rounds = rounds.round_list(project=project)
    worst_slices = [(round_, rounds.round_worst_slice(round_)) for round_ in all_rounds]
    context = {
        "worst_slices": worst_slices,
        "any_slices": any(worst is not None for _, worst in worst_slices),
        "project": project,
        "role": role,
        "can_manage": role in MANAGE,
        "rounds": all_rounds,
        "current": all_rounds[-1],
        "worse": rounds_worse(all_rounds),
        "charts": rounds_charts(all_rounds),
        "metric_name": METRIC_NAMES.get(project.goal_metric, project.goal_metric),
    }
    return render(request, "training/round_list.html", context)
