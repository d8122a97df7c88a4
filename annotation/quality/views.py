"""Browser pages of quality: the agreement report, noise scans started and followed, and a scan's flags."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.models import NoiseScan, Project, ScanStatus
from annotation.permissions import REVIEW, access_project
from annotation.quality import services as quality_svc
from annotation.quality.selectors import (
    flag_outcomes,
    noise_flag_list,
    noise_scan_get,
    noise_scan_latest,
    noise_scan_list,
    open_noise_flags,
    quality_report,
)
from annotation.review.routing_inputs import routing_plan
from annotation.review.selectors import outvoted_reviews
from core import durations
from core.errors import ServiceError
from core.http import AuthedRequest
from core.paging import page_or_404

FLAGS_PER_PAGE = 50


@login_required
def quality(request: AuthedRequest, project_id: int) -> HttpResponse:
    """Agreement, accuracy, confusion and trend for owners and reviewers; annotators see their own accuracy."""
    project, role = access_project(user=request.user, project_id=project_id)
    plan = routing_plan(project=project) if role in REVIEW else None
    ago = plan["measured_ago"] if plan else None
    context = {
        "project": project,
        "role": role,
        "can_review": role in REVIEW,
        "report": quality_report(project=project, user=request.user, role=role),
        **(
            _scan_context(project, noise_scan_latest(project=project), user=request.user, role=role)
            if role in REVIEW
            else {"scan": None}
        ),
        "plan": plan,
        "measured_ago": durations.rough(ago) if ago is not None else "",
        "prior_listed": plan is not None and any(voter["low"] is None for voter in plan["voters"]),
        "outvoted": outvoted_reviews(project=project) if role in REVIEW else (0, []),
    }
    return render(request, "annotation/quality_report.html", context)


def _scan_context(
    project: Project, scan: NoiseScan | None, *, user: User, role: str, oob: bool = False
) -> dict[str, Any]:
    """The scan, its place in its queue while queued (quality, or training for one that fine-tunes the encoder), and
    why a new scan cannot start (asked only while no scan is active: the polling fragment must stay cheap). `oob`: the
    fragment also refreshes the start button."""
    active = scan is not None and scan.is_active
    rate = (scan.summary or {}).get("estimated_noise_rate") if scan is not None else None
    ended_badly = scan is not None and scan.status in (ScanStatus.FAILED, ScanStatus.CANCELLED)
    return {
        # the noise flags waiting in the viewer's review queue (of this scan or earlier ones), counted once there is a
        # scan and it has ended: the polling fragment stays cheap
        "open_noise": open_noise_flags(project=project, user=user, role=role) if scan and not active else None,
        "scan": scan,
        # after a cancelled or failed scan, the one whose flags are in force is still a click away
        "previous": noise_scan_list(project=project, status=ScanStatus.SUCCEEDED).first() if ended_badly else None,
        # one decimal: 0.6 wrong labels of 383 read "0 %" through widthratio beside "Flagged 1"
        "noise_percent": 100 * rate if isinstance(rate, int | float) else None,
        "queue_place": quality_svc.noise_scan_queue_place(scan) if scan is not None else None,
        "scan_blocker": None if active else quality_svc.noise_scan_blocker(project=project),
        "oob": oob,
        # the whole run (embedding new texts included), beside the model's own seconds: a tester read the model's 17 s
        # as the time a 95-second scan took
        "scan_took": (
            durations.exact((scan.finished_at - scan.started_at).total_seconds())
            if scan is not None and scan.started_at and scan.finished_at
            else ""
        ),
        # the model the (disabled) choice shows while a scan runs is that scan's, else the one a new scan would take
        "shown_model": (
            (scan.params or {}).get("model") if scan is not None and active else quality_svc.default_scan_model()
        ),
    }


@login_required
@require_POST
def noise_scan_start(request: AuthedRequest, project_id: int) -> HttpResponse:
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    error = ""
    scan: NoiseScan | None
    model = request.POST.get("model") or quality_svc.default_scan_model()
    try:
        scan = quality_svc.noise_scan_start(project=project, user=request.user, params={"seed": 0, "model": model})
    except ServiceError as exc:
        error = exc.message
        scan = noise_scan_latest(project=project)
    return _scan_answer(request, project, role, scan, error)


@login_required
@require_POST
def noise_scan_cancel(request: AuthedRequest, project_id: int, scan_id: int) -> HttpResponse:
    """Cancel the scan (owners and reviewers, as start it); htmx gets the scan's fragment back with the start button."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    scan = _scan_or_404(project=project, scan_id=scan_id)
    error = ""
    try:
        scan = quality_svc.noise_scan_cancel(scan=scan, user=request.user)
    except ServiceError as exc:
        error = exc.message
    return _scan_answer(request, project, role, scan, error)


def _scan_answer(
    request: AuthedRequest, project: Project, role: str, scan: NoiseScan | None, error: str
) -> HttpResponse:
    """After a start or a cancel: htmx gets the scan's fragment (and the start button); a plain form, the quality page
    with the error as a message."""
    if request.htmx:
        scan_context = _scan_context(project, scan, user=request.user, role=role, oob=True)
        context = {"project": project, "error": error, **scan_context}
        # 200 with the error in the fragment: htmx swaps no 4xx answer, and the message must show where the scan would
        return render(request, "annotation/_quality_scan.html", context)
    if error:
        messages.error(request, error)
    return redirect(reverse("quality", args=[project.pk]))


def _scan_or_404(*, project, scan_id: int):
    scan = noise_scan_get(project=project, scan_id=scan_id)
    if scan is None:
        raise Http404("No such scan.")
    return scan


@login_required
def noise_scan_detail(request: AuthedRequest, project_id: int, scan_id: int) -> HttpResponse:
    """The scan's progress; the fragment keeps polling itself only while the scan is queued or running."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    scan = _scan_or_404(project=project, scan_id=scan_id)
    scan_context = _scan_context(project, scan, user=request.user, role=role, oob=bool(request.htmx))
    context = {"project": project, "error": "", **scan_context}
    template = "annotation/_quality_scan.html" if request.htmx else "annotation/quality_scan.html"
    return render(request, template, context)


@login_required
def noise_flag_list_page(request: AuthedRequest, project_id: int, scan_id: int) -> HttpResponse:
    """A scan's flags, most likely errors first, paged: seen without working the review queue."""
    project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    scan = _scan_or_404(project=project, scan_id=scan_id)
    page = page_or_404(noise_flag_list(scan=scan), FLAGS_PER_PAGE, request.GET.get("page"))
    now = flag_outcomes(page.object_list)
    rows = [(flag, now[flag.item_id]) for flag in page.object_list]
    context = {"project": project, "role": role, "scan": scan, "page": page, "rows": rows}
    return render(request, "annotation/quality_flags.html", context)
