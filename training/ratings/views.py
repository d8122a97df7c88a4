"""Browser pages where reviewers and owners judge model outputs: rate one at a time, blind A/B, exports.

Each page also serves its htmx fragment; a submit answers with the next output (or pair) in the same round
trip, and every form works without JavaScript too. Reviewers and owners rate; annotators get 403 (they stay
blind to model outputs) and people outside the project 404. The comparison page never names a run, for
anyone: it carries the item and a side, and only the owners' overview shows which run wins.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.annotate.span_pages import marked_html, span_editor_context
from annotation.models import Label, Project
from annotation.permissions import MANAGE, REVIEW, access_project
from core.errors import ServiceError
from core.http import AuthedRequest
from core.streaming import jsonl_response
from training.models import ModelOutput, RunStatus, TrainingRun, Verdict
from training.ratings import services as ratings
from training.ratings.selectors import (
    RatingTask,
    comparison_get,
    comparison_list,
    comparison_next,
    comparison_progress,
    comparison_summary,
    preference_pairs,
    probabilities_sorted,
    rateable_runs,
    rating_next,
    rating_output_get,
    rating_run_get,
    ratings_export_rows,
    seconds_since,
)
from training.ratings.services import NOT_GENERATION, preference_submit


def _labels(project: Project) -> list[Label]:
    return list(Label.objects.filter(project=project))


def _posted_rating(project: Project, post: QueryDict) -> dict[str, Any]:
    """The rating form's fields in the service's terms; the right value only counts when the verdict is wrong."""
    kind = project.task_kind
    if kind.generative:
        response = post.get("response", "")
        return {
            "scores": {key.removeprefix("score:"): value for key, value in post.items() if key.startswith("score:")},
            "correction": {"response": response} if response.strip() else None,
            "note": post.get("note", ""),
        }
    verdict = post.get("verdict", "")
    correction = None
    if verdict == Verdict.WRONG:
        correction = kind.value_from_form(post)
    return {"verdict": verdict, "correction": correction, "note": post.get("note", "")}


def _span_context(
    project: Project, output: ModelOutput | None, labels: list[Label], correction: dict[str, Any]
) -> dict[str, Any]:
    """Span outputs: the model's spans highlighted read-only (each quoted with its label), and the fix editor
    filled with them, or with the reviewer's own spans when a refused correction comes back."""
    if output is None or not project.task_kind.needs_text:
        return {}
    text = output.item.text
    start = correction if isinstance(correction.get("spans"), list) else output.value
    colors = {label.name: label.color for label in labels}
    spans = [s for s in (output.value or {}).get("spans") or [] if isinstance(s, dict)]
    return {
        **span_editor_context(text=text, value=start, labels=labels),
        "model_marked": marked_html(text, spans, colors),
        "model_spans": [
            {**s, "text": text[s["start"] : s["end"]], "color": colors.get(str(s.get("label")), "")}
            for s in spans
            if isinstance(s.get("start"), int) and isinstance(s.get("end"), int)
        ],
    }


def _rating_context(
    request: AuthedRequest,
    project: Project,
    role: str,
    run: TrainingRun,
    *,
    labels: list[Label],
    task: RatingTask,
    error: str = "",
    error_field: str | None = None,
    flash: str = "",
    posted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    posted = posted or {}
    correction = posted.get("correction") or {}
    scores = posted.get("scores") or {}
    return {
        "project": project,
        "role": role,
        "run": run,
        "task": task,
        "output": task.output,
        "labels": labels,
        "kind": project.task_kind,
        "criteria": [
            {"name": str(name), "score": str(scores.get(str(name), ""))} for name in project.rating_criteria or []
        ],
        "show_confidence": project.show_model_confidence,
        "probabilities": probabilities_sorted(task.output)
        if task.output and project.show_model_confidence
        else [],
        "shown_at": f"{time.time():.3f}",
        "error": error,
        "error_field": error_field or "",
        "flash": flash,
        "verdict": posted.get("verdict", ""),
        "selected": correction.get("labels") or ([correction["label"]] if correction.get("label") else []),
        "response": correction.get("response", ""),
        "note": posted.get("note", ""),
        **_span_context(project, task.output, labels, correction),
    }


def _rating_response(request: AuthedRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    if request.htmx:
        # htmx swaps 2xx only: a refusal is still a workspace to show, its message inside.
        return render(request, "training/_rating_workspace.html", context)
    return render(request, "training/rating_page.html", context, status=status)


@login_required
def rating_home(request: AuthedRequest, project_id: int) -> HttpResponse:
    """Runs to rate with the rater's progress, blind comparisons, exports; owners create comparisons."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    comparisons = comparison_list(project=project)
    context = {
        "project": project,
        "role": role,
        "runs": rateable_runs(project=project, rater=request.user),
        "comparisons": comparisons,
        "summaries": [comparison_summary(comparison=c) for c in comparisons] if role in MANAGE else [],
        "can_compare": role in MANAGE and project.task_kind.generative,
        "succeeded": TrainingRun.objects.filter(project=project, status=RunStatus.SUCCEEDED).order_by("-id"),
        "not_generation": NOT_GENERATION,
    }
    return render(request, "training/rating_home.html", context)


@login_required
def rating_page(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    """The next output of the run this rater has not rated; `?output=<id>` shows one output (to rate it again)."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    run = rating_run_get(project=project, run_id=run_id)
    task = rating_next(run=run, rater=request.user)
    wanted = request.GET.get("output", "")
    if wanted.isdigit():
        task = RatingTask(
            output=rating_output_get(run=run, output_id=int(wanted)), remaining=task.remaining
        )
    context = _rating_context(request, project, role, run, labels=_labels(project), task=task)
    return _rating_response(request, context)


@login_required
@require_POST
def rating_submit(request: AuthedRequest, project_id: int, run_id: int, output_id: int) -> HttpResponse:
    """Append the rating and answer with the next output in the same round trip."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    run = rating_run_get(project=project, run_id=run_id)
    output = rating_output_get(run=run, output_id=output_id)
    labels = _labels(project)
    posted = _posted_rating(project, request.POST)
    try:
        ratings.rating_submit(
            rater=request.user,
            output=output,
            project=project,
            labels=[label.name for label in labels],
            seconds_spent=seconds_since(request.POST.get("shown_at")),
            **posted,
        )
    except ServiceError as exc:
        task = RatingTask(output=output, remaining=rating_next(run=run, rater=request.user).remaining)
        context = _rating_context(
            request,
            project,
            role,
            run,
            labels=labels,
            task=task,
            error=exc.message,
            error_field=exc.field,
            posted=posted,
        )
        return _rating_response(request, context, status=400)
    done = f"Rated item {output.item_id}."
    if not request.htmx:
        messages.success(request, done)
        return redirect(reverse("rating-page", args=[project.pk, run.pk]))
    task = rating_next(run=run, rater=request.user)
    return _rating_response(request, _rating_context(request, project, role, run, labels=labels, task=task, flash=done))


def _run_or_none(project: Project, raw: str | None) -> TrainingRun | None:
    if raw is None or not raw.isdigit():
        return None
    return TrainingRun.objects.filter(project=project, pk=int(raw)).first()


@login_required
@require_POST
def comparison_create(request: AuthedRequest, project_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    run_a = _run_or_none(project, request.POST.get("run_a"))
    run_b = _run_or_none(project, request.POST.get("run_b"))
    try:
        if run_a is None or run_b is None:
            raise ServiceError("Pick two runs of this project.", field="run_a" if run_a is None else "run_b")
        comparison = ratings.comparison_create(project=project, user=request.user, run_a=run_a, run_b=run_b)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect(reverse("rating-home", args=[project.pk]))
    return redirect(reverse("comparison-page", args=[project.pk, comparison.pk]))


def _comparison_response(
    request: AuthedRequest, project: Project, role: str, comparison: Any, *, error: str = "", flash: str = ""
) -> HttpResponse:
    context = {
        "project": project,
        "role": role,
        "comparison": comparison,
        "pair": comparison_next(comparison=comparison, rater=request.user),
        "progress": comparison_progress(comparison=comparison, rater=request.user),
        "error": error,
        "flash": flash,
    }
    if request.htmx:
        return render(request, "training/_comparison_workspace.html", context)
    return render(request, "training/comparison_page.html", context, status=400 if error else 200)


@login_required
def comparison_page(request: AuthedRequest, project_id: int, comparison_id: int) -> HttpResponse:
    """One prompt and "Response 1" / "Response 2", in an order no one can tell from the page."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    comparison = comparison_get(project=project, comparison_id=comparison_id)
    return _comparison_response(request, project, role, comparison)


@login_required
@require_POST
def comparison_submit(request: AuthedRequest, project_id: int, comparison_id: int, item_id: int) -> HttpResponse:
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    comparison = comparison_get(project=project, comparison_id=comparison_id)
    try:
        preference_submit(
            comparison=comparison, rater=request.user, item_id=item_id, choice=request.POST.get("choice", "")
        )
    except ServiceError as exc:
        return _comparison_response(request, project, role, comparison, error=exc.message)
    if not request.htmx:
        return redirect(reverse("comparison-page", args=[project.pk, comparison.pk]))
    return _comparison_response(request, project, role, comparison, flash=f"Saved your choice for item {item_id}.")



@login_required
def ratings_export(request: AuthedRequest, project_id: int) -> StreamingHttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    return jsonl_response(ratings_export_rows(project=project), f"project-{project.pk}-ratings.jsonl")


@login_required
def preferences_export(request: AuthedRequest, project_id: int) -> StreamingHttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    return jsonl_response(preference_pairs(project=project), f"project-{project.pk}-dpo-pairs.jsonl")
