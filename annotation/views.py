"""Browser views: thin; parse, call one service or selector, render."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Membership


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    memberships = (
        Membership.objects.select_related("project")
        .filter(user=request.user, project__archived_at__isnull=True)
        .order_by("-project__created_at")
    )
    return render(request, "annotation/project_list.html", {"memberships": memberships})
