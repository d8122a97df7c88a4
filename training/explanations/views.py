"""The explanation page of one output: the item's text with its words highlighted by how much they moved the
prediction (classification) or each span the model found (spans), or the response with each token coloured by its
probability (generation).

Owners and reviewers reach it from the run page's outputs and from the rating page; annotators get 403 (blind to
model outputs) and people outside the project 404. GET shows what there is; POST asks for the explanation (a
job on the "quality" queue) and the page's fragment polls every 2 s until it is done.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotation.models import Project
from annotation.permissions import REVIEW, access_project
from core.errors import ServiceError
from core.http import AuthedRequest
from core.queues import queue_place
from training.explanations import selectors, services
from training.models import ExplanationStatus, ModelOutput, TrainingRun
from training.ratings.selectors import rating_run_get
from training.runs.selectors import run_artifact_path, run_get

POLL_EVERY = "every 2s"


def _context(project: Project, role: str, run: TrainingRun, output: ModelOutput, *, error: str = "") -> dict:
    explanation = selectors.explanation_for_output(output=output)
    place = None
    if explanation is not None and explanation.status == ExplanationStatus.QUEUED:
        place = queue_place(selectors.EXPLANATIONS_QUEUE, selectors.explanation_job_id(explanation.pk))
    text, response = selectors.explained_text(output)
    return {
        "project": project,
        "role": role,
        "run": run,
        "output": output,
        "text": text,
        "response": response,
        "explanation": explanation,
        "queue_place": place,
        "view": selectors.explanation_view(explanation=explanation, output=output),
        "show_probability": selectors.probability_shown(project=project, role=role),
        "has_model": run_artifact_path(run) is not None,
        "rateable": _rateable(project, run),
        "poll": POLL_EVERY if explanation is not None and explanation.is_active else "",
        "error": error,
    }


def _rateable(project: Project, run: TrainingRun) -> bool:
    """Whether the rating page takes this run (the page links to it only then)."""
    try:
        rating_run_get(project=project, run_id=run.pk)
    except Http404:
        return False
    return True


@login_required
@require_http_methods(["GET", "POST"])
def explanation_page(request: AuthedRequest, project_id: int, run_id: int, output_id: int) -> HttpResponse:
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    run = run_get(project=project, run_id=run_id)
    output = selectors.output_get(run=run, output_id=output_id)
    error = ""
    if request.method == "POST":
        try:
            services.explanation_request(output=output, user=request.user)
        except ServiceError as exc:
            error = exc.message
        if not request.htmx:
            if error:
                messages.error(request, error)
            return redirect(reverse("explanation-page", args=[project.pk, run.pk, output.pk]))
    context = _context(project, role, run, output, error=error)
    template = "training/_explanation.html" if request.htmx else "training/explanation_page.html"
    return render(request, template, context)
