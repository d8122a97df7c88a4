"""Browser pages for training: start a run on a snapshot, watch it live, cancel, resume, compare, download, predict,
distil a finished classifier into a smaller student.

Owners start, cancel and resume runs, download models and start predictions; reviewers see runs and their model
cards; annotators
get 403 everywhere here (they stay blind to model outputs) and people outside the project 404. Pages only read:
a running run whose heartbeat stopped shows as "heartbeat lost" until the sweep (`runs_sweep_job` every minute,
or `manage.py runs_sweep`) marks it failed (abandoned).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotation.annotate.span_pages import marked_html
from annotation.models import Project, Snapshot
from annotation.permissions import MANAGE, REVIEW, access_project
from annotation.projects.selectors import label_list
from core.errors import ServiceError
from core.http import AuthedRequest
from training.augment.selectors import augmentation_summary, augmentations_succeeded
from training.models import TrainingRun
from training.runs import forms, selectors, services
from training.runs.responses import artifact_response, model_card_response
from training.spec import METHOD_LORA, METHODS, TASK_SPANS

SNAPSHOT_NOT_FOUND = "No such snapshot."


POLL_EVERY = "every 2s"


NOTHING_LEFT_TO_PREDICT = "Every item of every scope has an output of this model already."


def _snapshot_or_404(project: Project, snapshot_id: int | str | None) -> Snapshot:
    try:
        snapshot = Snapshot.objects.filter(project=project, pk=int(snapshot_id or 0)).first()
    except ValueError:
        snapshot = None
    if snapshot is None:
        raise Http404(SNAPSHOT_NOT_FOUND)
    snapshot.project = project
    return snapshot


@login_required
def run_list(request: AuthedRequest, project_id: int) -> HttpResponse:
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    context = {
        "project": project,
        "role": role,
        "runs": selectors.runs_with_queue_places(selectors.run_list(project=project)),
        "snapshots": Snapshot.objects.filter(project=project, training_runs__isnull=False).distinct(),
    }
    return render(request, "training/run_list.html", context)


@login_required
def run_create(request: AuthedRequest, project_id: int, snapshot_id: int) -> HttpResponse:
    """The run form with the task's defaults; posting starts the run, or shows every invalid field."""
    project, role = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    snapshot = _snapshot_or_404(project, snapshot_id)
    task = selectors.project_task(project)
    context: dict[str, Any] = {
        "project": project,
        "role": role,
        "snapshot": snapshot,
        "task": task,
        "groups": [],
        "errors": {},
    }
    if task is None:
        context["error"] = services.no_recipe_message(project)
        return render(request, "training/run_create.html", context, status=400 if request.method == "POST" else 200)
    status = 200
    if request.method == "POST":
        values = forms.spec_data_from_post(request.POST, task=task)
        name = request.POST.get("name", "")
        context["augmentation_id"] = request.POST.get("augmentation", "")
        try:
            run = services.run_start(
                snapshot=snapshot,
                user=request.user,
                spec_data=values,
                name=name,
                augmentation_id=context["augmentation_id"],
            )
        except services.RunInputError as exc:
            context.update(errors=exc.errors, error=exc.message)
            status = 400
        except ServiceError as exc:
            context["error"] = exc.message
            status = 400
        else:
            # No "Run N queued" flash: the run page shows the run's state live ("Queued — 2 jobs ahead of it…"),
            # and a flash rendered once above a polling fragment would still say "queued" after it finished.
            return redirect(reverse("run-detail", args=[project.pk, run.pk]))
        context["name"] = name
    else:
        method = request.GET.get("method", METHOD_LORA)
        method = method if method in METHODS else METHOD_LORA
        current = forms.spec_data_from_post(request.GET, task=task) if request.GET.get("changed") else None
        values = forms.initial_values(
            task=task, method=method, class_weights=selectors.snapshot_class_weights(snapshot), current=current
        )
        context["name"] = request.GET.get("name", "")
        context["augmentation_id"] = request.GET.get("augmentation", "")
    context["augmentations"] = augmentations_succeeded(snapshot=snapshot)
    context["groups"] = forms.form_fields(
        task=task, values=values, errors=context["errors"], base_models=selectors.base_model_names(task)
    )
    context["counts"] = selectors.snapshot_split_counts(snapshot)
    blocker = services.run_start_blocker(snapshot=snapshot)
    context["blocker"] = blocker.message if blocker is not None else ""
    template = "training/_run_form.html" if request.htmx else "training/run_create.html"
    return render(request, template, context, status=status)


def _message(error: ServiceError | None) -> str:
    return error.message if error is not None else ""


def _outputs_shown(project: Project, run: TrainingRun) -> list[selectors.ShownOutput]:
    """Some outputs of the run; a span run's with the item text, its spans marked and labelled (not offsets)."""
    shown = selectors.run_outputs_most_uncertain(run=run)
    if run.task != TASK_SPANS or not shown:
        return shown
    colors = {label.name: label.color for label in label_list(project=project)}
    return [
        dataclasses.replace(s, marked=marked_html(s.output.item.text, (s.output.value or {}).get("spans"), colors))
        for s in shown
    ]


def _detail_context(project: Project, role: str, run: TrainingRun) -> dict:
    resume_point = selectors.run_resume_point(run) if run.status in ("failed", "cancelled") else None
    batches = selectors.prediction_batches(run=run)
    has_artifact = selectors.run_artifact_path(run) is not None
    scopes = selectors.prediction_scope_choices(run=run) if has_artifact else []
    predict_blocker = _message(services.prediction_batch_blocker(run=run)) if has_artifact else ""
    if has_artifact and not predict_blocker and not any(missing for _, _, missing in scopes):
        predict_blocker = NOTHING_LEFT_TO_PREDICT
    return {
        "project": project,
        "role": role,
        "can_manage": role in MANAGE,
        "run": run,
        "augmentation": augmentation_summary(run.augmentation),
        # The fragment polls while something can still change, and renders without hx-trigger once final.
        "poll": POLL_EVERY if run.is_active or any(batch.is_active for batch in batches) else "",
        "progress": selectors.run_progress_view(run),
        "queue_place": selectors.run_queue_place(run),
        "charts": selectors.run_chart_data(run),
        "log": selectors.run_messages(run),
        "evaluation": selectors.run_evaluation(run),
        "resume_point": resume_point,
        "has_artifact": has_artifact,
        "batches": batches,
        "scopes": scopes,
        "predict_blocker": predict_blocker,
        "output_count": selectors.run_output_count(run=run),
        "uncertain": _outputs_shown(project, run),
        "distillation": selectors.run_distillation(run),
        "students": selectors.run_students(run),
        "can_distil": role in MANAGE and services.run_distil_blocker(teacher=run) is None,
        "span_prelabel_count": selectors.run_span_prelabel_count(run=run),
    }


@login_required
def run_detail(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    """The run's live page; its htmx fragment polls every 2 s while the run is queued or running, then stops."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    run = selectors.run_get(project=project, run_id=run_id)
    template = "training/_run_live.html" if request.htmx else "training/run_detail.html"
    return render(request, template, _detail_context(project, role, run))


@login_required
@require_http_methods(["GET", "POST"])
def run_cancel(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    """GET: what cancelling will do (the confirmation); POST: cancel the run."""
    project, role = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    run = selectors.run_get(project=project, run_id=run_id)
    if request.method == "GET":
        point = selectors.run_resume_point(run)
        context = {"project": project, "run": run, "resume_point": point, "active": run.is_active}
        return render(request, "training/run_cancel_confirm.html", context)
    try:
        run = services.run_cancel(run=run, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    if request.htmx:
        return render(request, "training/_run_live.html", _detail_context(project, role, run))
    return redirect(reverse("run-detail", args=[project.pk, run.pk]))


@login_required
@require_POST
def run_resume(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    run = selectors.run_get(project=project, run_id=run_id)
    try:
        new = services.run_resume(run=run, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect(reverse("run-detail", args=[project.pk, run.pk]))
    return redirect(reverse("run-detail", args=[project.pk, new.pk]))


@login_required
@require_http_methods(["GET", "POST"])
def run_distil(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    """The distil form (a student of this run: fewer layers or another encoder, temperature, alpha, unlabelled
    items); posting queues the student, or shows every invalid field."""
    project, role = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    teacher = selectors.run_get(project=project, run_id=run_id)
    blocker = services.run_distil_blocker(teacher=teacher)
    context: dict[str, Any] = {"project": project, "role": role, "run": teacher, "errors": {}, "error": ""}
    status = 200
    if request.method == "POST" and blocker is None:
        values = forms.spec_data_from_post(request.POST, task=teacher.task)
        context["name"] = request.POST.get("name", "")
        try:
            student = services.run_distil(teacher=teacher, user=request.user, spec_data=values, name=context["name"])
        except services.RunInputError as exc:
            context.update(errors=exc.errors, error=exc.message)
            status = 400
        except ServiceError as exc:
            context["error"] = exc.message
            status = 400
        else:
            return redirect(reverse("run-detail", args=[project.pk, student.pk]))
        values = {**services.run_distil_defaults(teacher=teacher), **values}
    else:
        status = 400 if request.method == "POST" else 200
        values = services.run_distil_defaults(teacher=teacher) if blocker is None else {}
        context["name"] = ""
    context["blocker"] = blocker.message if blocker is not None else ""
    context["teacher_layers"] = services.teacher_depth(teacher) if blocker is None else None
    context["groups"] = forms.form_fields(
        task=teacher.task,
        values=values,
        errors=context["errors"],
        base_models=selectors.base_model_names(teacher.task),
        groups_shown=forms.DISTIL_GROUPS,
        helps=forms.DISTIL_HELP,
    )
    return render(request, "training/run_distil.html", context, status=status)


@login_required
def run_artifact(request: AuthedRequest, project_id: int, run_id: int) -> StreamingHttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    return artifact_response(selectors.run_get(project=project, run_id=run_id))


@login_required
def run_model_card(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    return model_card_response(selectors.run_get(project=project, run_id=run_id))


@login_required
def run_compare(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The finished runs of one snapshot side by side: the settings that differ and every test figure."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    snapshot = _snapshot_or_404(project, request.GET.get("snapshot"))
    runs = selectors.runs_for_compare(snapshot=snapshot)
    context = {
        "project": project,
        "role": role,
        "snapshot": snapshot,
        "runs": runs,
        "table": selectors.compare_table(runs),
    }
    return render(request, "training/run_compare.html", context)


@login_required
@require_POST
def prediction_batch_start(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    run = selectors.run_get(project=project, run_id=run_id)
    try:
        services.prediction_batch_start(run=run, user=request.user, scope=request.POST.get("scope", ""))
    except ServiceError as exc:
        messages.error(request, exc.message)
    # Success needs no flash: the batch list shows the new batch's state live (queued, its place, its progress).
    return redirect(reverse("run-detail", args=[project.pk, run.pk]) + "#predictions")


@login_required
@require_POST
def run_span_prelabels(request: AuthedRequest, project_id: int, run_id: int) -> HttpResponse:
    """A span run's spans on items still to annotate become their pre-annotations (outputs already predicted)."""
    project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
    run = selectors.run_get(project=project, run_id=run_id)
    try:
        written = services.run_span_prelabels_apply(run=run, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        shown = "" if project.show_prelabels else " Turn on 'show pre-labels' in the project settings to show them."
        items = f"{written} item{'s' if written != 1 else ''}"
        messages.success(request, f"Pre-annotated {items} with this run's spans.{shown}")
    return redirect(reverse("run-detail", args=[project.pk, run.pk]) + "#predictions")
