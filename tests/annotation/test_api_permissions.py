"""Permission matrix of the annotation API (annotation/*/apis.py): every route and method × every role.

Each caller authenticates with their own API token. Outsiders get 404 on everything inside a project
(ids reveal nothing), members whose role does not allow the operation 403, anonymous callers 401.
An allowed request is a valid one, so its status is the operation's success code.

    endpoint                                                      owner    annotator reviewer outsider anonymous
    POST   auth/token/                                            200      200      200      200      400
    GET    auth/token/                                            200      200      200      200      401
    DELETE auth/token/                                            204      204      204      204      401
    POST   auth/token/rotate/                                     200      200      200      200      401
    GET    me/                                                    200      200      200      200      401
    GET    projects/                                              200      200      200      200      401
    POST   projects/                                              201      201      201      201      401
    GET    projects/{id}/                                         200      200      200      404      401
    PATCH  projects/{id}/                                         200      403      403      404      401
    DELETE projects/{id}/                                         204      403      403      404      401
    GET    projects/{id}/members/                                 200      200      200      404      401
    POST   projects/{id}/members/                                 201      403      403      404      401
    GET    projects/{id}/members/{user_id}/                       200      200      200      404      401
    PATCH  projects/{id}/members/{user_id}/                       200      403      403      404      401
    DELETE projects/{id}/members/{user_id}/                       204      403      403      404      401
    GET    projects/{id}/labels/                                  200      200      200      404      401
    POST   projects/{id}/labels/                                  201      403      403      404      401
    GET    projects/{id}/labels/{label_id}/                       200      200      200      404      401
    PATCH  projects/{id}/labels/{label_id}/                       200      403      403      404      401
    GET    projects/{id}/guidelines/                              200      200      200      404      401
    POST   projects/{id}/guidelines/                              201      403      403      404      401
    GET    projects/{id}/guidelines/current/                      200      200      200      404      401
    POST   projects/{id}/guidelines/{version}/acknowledgements/   201      201      201      404      401
    GET    projects/{id}/imports/                                 200      403      403      404      401
    POST   projects/{id}/imports/                                 201      403      403      404      401
    GET    projects/{id}/imports/{import_id}/                     200      403      403      404      401
    POST   projects/{id}/claims/next/                             200      200      403      404      401
    POST   projects/{id}/items/{item_id}/annotations/             201      201      403      404      401
    POST   projects/{id}/items/{item_id}/skip/                    200      200      403      404      401
    PUT    projects/{id}/items/{item_id}/draft/                   200      200      403      404      401
    GET    projects/{id}/annotations/                             200      200      200      404      401
    POST   projects/{id}/annotations/undo/                        200      200      403      404      401
    GET    projects/{id}/annotations/export/                      200      403      200      404      401
    GET    projects/{id}/progress/                                200      200      200      404      401
    GET    projects/{id}/progress/me/                             200      200      403      404      401
    GET    projects/{id}/review-tasks/                            200      403      200      404      401
    GET    projects/{id}/review-tasks/{task_id}/                  200      403      200      404      401
    POST   projects/{id}/review-tasks/{task_id}/decide/           200      403      200      404      401
    POST   projects/{id}/review-tasks/bulk-accept/                200      403      200      404      401
    GET    projects/{id}/items/{item_id}/history/                 200      403      200      404      401
    POST   projects/{id}/items/{item_id}/overrule/                200      403      403      404      401
    GET    projects/{id}/quality/                                 200      200      200      404      401
    GET    projects/{id}/annotator-quality/                       200      403      200      404      401
    GET    projects/{id}/routing-plan/                            200      403      200      404      401
    GET    projects/{id}/noise-scans/                             200      403      200      404      401
    POST   projects/{id}/noise-scans/                             400      403      400      404      401
    GET    projects/{id}/noise-scans/{scan_id}/                   200      403      200      404      401
    POST   projects/{id}/noise-scans/{scan_id}/cancel/            200      403      200      404      401
    GET    projects/{id}/noise-scans/{scan_id}/flags/             200      403      200      404      401
    GET    projects/{id}/snapshots/                               200      403      200      404      401
    POST   projects/{id}/snapshots/                               201      403      403      404      401
    GET    projects/{id}/snapshots/{snapshot_id}/                 200      403      200      404      401
    GET    projects/{id}/snapshots/{snapshot_id}/download/        200      403      200      404      401
    GET    projects/{id}/snapshots/compare/                       200      403      200      404      401
    GET    projects/{id}/items/                                   200      403      200      404      401
    GET    projects/{id}/items/{item_id}/                         200      403      200      404      401
    GET    projects/{id}/items/export/                            200      403      200      404      401
    GET    projects/{id}/webhooks/                                200      403      403      404      401
    POST   projects/{id}/webhooks/                                201      403      403      404      401
    GET    projects/{id}/webhooks/{w}/                            200      403      403      404      401
    PATCH  projects/{id}/webhooks/{w}/                            200      403      403      404      401
    DELETE projects/{id}/webhooks/{w}/                            204      403      403      404      401
    GET    projects/{id}/webhooks/{w}/secret/                     200      403      403      404      401
    POST   projects/{id}/webhooks/{w}/test/                       202      403      403      404      401
    GET    projects/{id}/webhooks/{w}/deliveries/                 200      403      403      404      401
    GET    projects/{id}/webhooks/{w}/deliveries/{d}/             200      403      403      404      401
    POST   projects/{id}/webhooks/{w}/deliveries/{d}/redeliver/   202      403      403      404      401

`MATRIX` below is this table as code: `test_the_table_above_is_the_matrix` keeps the two equal, and
`test_every_route_is_in_the_matrix` fails when an endpoint is added without its row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.annotate import urls as annotate_urls
from annotation.annotate.services import annotation_submit, claim_next
from annotation.datasets import urls as datasets_urls
from annotation.datasets.services import snapshot_create
from annotation.imports import urls as imports_urls
from annotation.imports.services import import_create
from annotation.models import Item, NoiseScan, Project, ReviewStatus, ReviewTask, Role, ScanStatus
from annotation.projects import urls as projects_urls
from annotation.projects.selectors import label_list
from annotation.projects.services import token_issue
from annotation.quality import urls as quality_urls
from annotation.review import urls as review_urls
from annotation.review.services import review_decide
from annotation.webhooks import urls as webhooks_urls
from annotation.webhooks.services import endpoint_create, send_test_event
from tests.fixtures.api import api_routes, matrix_table
from tests.fixtures.people import acknowledge_guidelines

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
ANNOTATING_ROLES = ("owner", "annotator")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

AREA_URLS = (projects_urls, imports_urls, annotate_urls, review_urls, quality_urls, datasets_urls, webhooks_urls)


@dataclass(frozen=True)
class World:
    project: Project
    users: dict[str, Any]
    import_job_id: int
    member_id: int  # a member everyone may read and the owner may change or remove
    label_id: int
    task_id: int  # an open review task (the annotators disagreed on reviewed_item_id)
    reviewed_item_id: int
    scan_id: int
    snapshot_ids: tuple[int, int]
    webhook_id: int
    delivery_id: int  # a test event's delivery to webhook_id


@dataclass(frozen=True)
class Row:
    method: str
    name: str
    expected: tuple[int, int, int, int, int]  # owner, annotator, reviewer, outsider, anonymous
    # (world, role) -> (url kwargs beyond project_id, request body)
    prepare: Callable[[World, str], tuple[dict[str, int], dict[str, Any]]] = lambda world, role: ({}, {})
    in_project: bool = True
    multipart: bool = False


def _held_item(world: World, role: str) -> int:
    """An item the caller holds when their role may annotate (else any item: the access check comes first)."""
    if role in ANNOTATING_ROLES:
        return claim_next(annotator=world.users[role], project=world.project).item.pk
    return Item.objects.filter(project=world.project).order_by("pk").values_list("pk", flat=True).first()


def _undo_request(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    """The caller (when they may annotate) has a submission to undo."""
    if role in ANNOTATING_ROLES:
        user = world.users[role]
        item = claim_next(annotator=user, project=world.project).item
        names = [label.name for label in label_list(project=world.project)]
        annotation_submit(annotator=user, item=item, value={"label": names[0]}, label_names=names)
    return {}, {}


def _member_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    return {"user_id": world.member_id}, {}


def _label_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    return {"label_id": world.label_id}, {}


def _task_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    return {"task_id": world.task_id}, {}


def _audit_tasks(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    """An item both annotators labelled alike, in review as an audit sample: what a bulk accept takes."""
    from annotation.models import ReviewReason
    from annotation.review.services import review_task_open
    from tests.fixtures.reviews import annotate_pair

    annotator2 = get_user_model().objects.get(pk=world.member_id)
    item = annotate_pair(world.project, world.users["annotator"], annotator2, "positive", "positive")
    task = ReviewTask.objects.filter(item=item, status=ReviewStatus.OPEN).first()
    if task is None:  # not sampled for audit: its agreement was approved; audit it now
        task = review_task_open(item=item, reasons=[ReviewReason.AUDIT])
    return {}, {"task_ids": [task.pk]}


def _reviewed_item_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    return {"item_id": world.reviewed_item_id}, {}


def _overrule_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    """The disputed item, decided first (an overrule needs a final label), with another label and a reason."""
    task = ReviewTask.objects.get(pk=world.task_id)
    labels = [label.name for label in label_list(project=task.item.project)]
    review_decide(reviewer=get_user_model().objects.get(username="reviewer"), task=task, value={"label": labels[0]})
    return {"item_id": task.item_id}, {"value": {"label": labels[1]}, "reason": "the permission matrix"}


def _scan_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    return {"scan_id": world.scan_id}, {}


def _queued_scan_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    """A scan still queued (no worker here): what a cancel takes."""
    scan = NoiseScan.objects.create(project=world.project, created_by=world.users["owner"])
    return {"scan_id": scan.pk}, {}


def _snapshot_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    return {"snapshot_id": world.snapshot_ids[0]}, {}


def _compare_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    old, new = world.snapshot_ids
    return {}, {"old": old, "new": new}


def _webhook_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    return {"webhook_id": world.webhook_id}, {}


def _delivery_kwargs(world: World, role: str) -> tuple[dict[str, int], dict[str, Any]]:
    return {"webhook_id": world.webhook_id, "delivery_id": world.delivery_id}, {}


def _item_kwargs(world: World, role: str) -> dict[str, int]:
    return {"item_id": _held_item(world, role)}


def _token_body(world: World, role: str) -> dict[str, Any]:
    if role == "anonymous":
        return {"username": "nobody", "password": "wrong"}
    user = world.users[role]
    return {"username": user.username, "password": "pw-" + user.username}


def _jsonl_upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/jsonl")


def _upload(world: World, role: str) -> dict[str, Any]:
    return {"file": _jsonl_upload("more.jsonl", b'{"text": "freshly imported one"}\n{"text": "imported two"}\n')}


# fmt: off
MATRIX = [
    #   method    url name                          owner annot review outsider anon
    Row("post",   "api-token",                      (200, 200, 200, 200, 400),
        lambda w, r: ({}, _token_body(w, r)), in_project=False),
    Row("get",    "api-token",                      (200, 200, 200, 200, 401), in_project=False),
    Row("delete", "api-token",                      (204, 204, 204, 204, 401), in_project=False),
    Row("post",   "api-token-rotate",               (200, 200, 200, 200, 401), in_project=False),
    Row("get",    "api-me",                         (200, 200, 200, 200, 401), in_project=False),
    Row("get",    "api-project-list",               (200, 200, 200, 200, 401), in_project=False),
    Row("post",   "api-project-list",               (201, 201, 201, 201, 401),
        lambda w, r: ({}, {"name": "Mine", "labels": ["yes", "no"]}), in_project=False),
    Row("get",    "api-project-detail",             (200, 200, 200, 404, 401)),
    Row("patch",  "api-project-detail",             (200, 403, 403, 404, 401),
        lambda w, r: ({}, {"lease_seconds": 600})),
    Row("delete", "api-project-detail",             (204, 403, 403, 404, 401)),
    Row("get",    "api-member-list",                (200, 200, 200, 404, 401)),
    Row("post",   "api-member-list",                (201, 403, 403, 404, 401),
        lambda w, r: ({}, {"username": "newcomer", "role": Role.ANNOTATOR, "create": True})),
    Row("get",    "api-member-detail",              (200, 200, 200, 404, 401), _member_kwargs),
    Row("patch",  "api-member-detail",              (200, 403, 403, 404, 401),
        lambda w, r: (_member_kwargs(w, r)[0], {"role": Role.REVIEWER})),
    Row("delete", "api-member-detail",              (204, 403, 403, 404, 401), _member_kwargs),
    Row("get",    "api-label-list",                 (200, 200, 200, 404, 401)),
    Row("post",   "api-label-list",                 (201, 403, 403, 404, 401),
        lambda w, r: ({}, {"name": "mixed"})),
    Row("get",    "api-label-detail",               (200, 200, 200, 404, 401), _label_kwargs),
    Row("patch",  "api-label-detail",               (200, 403, 403, 404, 401),
        lambda w, r: (_label_kwargs(w, r)[0], {"color": "#123456"})),
    Row("get",    "api-guideline-list",             (200, 200, 200, 404, 401)),
    Row("post",   "api-guideline-list",             (201, 403, 403, 404, 401),
        lambda w, r: ({}, {"body": "# Sentiment v2\n\nSarcasm is negative.", "change_note": "sarcasm"})),
    Row("get",    "api-guideline-current",          (200, 200, 200, 404, 401)),
    Row("post",   "api-guideline-acknowledgement",  (201, 201, 201, 404, 401),
        lambda w, r: ({"version": 1}, {})),
    Row("get",    "api-import-list",                (200, 403, 403, 404, 401)),
    Row("post",   "api-import-list",                (201, 403, 403, 404, 401),
        lambda w, r: ({}, _upload(w, r)), multipart=True),
    Row("get",    "api-import-detail",              (200, 403, 403, 404, 401),
        lambda w, r: ({"import_id": w.import_job_id}, {})),
    Row("post",   "api-claim-next",                 (200, 200, 403, 404, 401)),
    Row("post",   "api-item-annotate",              (201, 201, 403, 404, 401),
        lambda w, r: (_item_kwargs(w, r), {"value": {"label": "positive"}})),
    Row("post",   "api-item-skip",                  (200, 200, 403, 404, 401),
        lambda w, r: (_item_kwargs(w, r), {"reason": "not English"})),
    Row("put",    "api-item-draft",                 (200, 200, 403, 404, 401),
        lambda w, r: (_item_kwargs(w, r), {"value": {"label": "neutral"}})),
    Row("get",    "api-annotation-list",            (200, 200, 200, 404, 401)),
    Row("post",   "api-annotation-undo",            (200, 200, 403, 404, 401), _undo_request),
    Row("get",    "api-annotation-export",          (200, 403, 200, 404, 401)),
    Row("get",    "api-progress",                   (200, 200, 200, 404, 401)),
    Row("get",    "api-progress-me",                (200, 200, 403, 404, 401)),
    Row("get",    "api-review-task-list",           (200, 403, 200, 404, 401)),
    Row("get",    "api-review-task-detail",         (200, 403, 200, 404, 401), _task_kwargs),
    Row("post",   "api-review-task-decide",         (200, 403, 200, 404, 401),
        lambda w, r: (_task_kwargs(w, r)[0], {"action": "fix", "value": {"label": "negative"}})),
    Row("post",   "api-review-task-bulk-accept",    (200, 403, 200, 404, 401), _audit_tasks),
    Row("get",    "api-item-history",               (200, 403, 200, 404, 401), _reviewed_item_kwargs),
    Row("post",   "api-item-overrule",              (200, 403, 403, 404, 401), _overrule_kwargs),
    Row("get",    "api-quality",                    (200, 200, 200, 404, 401)),
    Row("get",    "api-annotator-quality",          (200, 403, 200, 404, 401)),
    Row("get",    "api-routing-plan",               (200, 403, 200, 404, 401)),
    Row("get",    "api-noise-scan-list",            (200, 403, 200, 404, 401)),
    # too few labelled items for a scan, refused before anything is queued: the matrix checks who may ask at all
    Row("post",   "api-noise-scan-list",            (400, 403, 400, 404, 401)),
    Row("get",    "api-noise-scan-detail",          (200, 403, 200, 404, 401), _scan_kwargs),
    Row("post",   "api-noise-scan-cancel",          (200, 403, 200, 404, 401), _queued_scan_kwargs),
    Row("get",    "api-noise-flag-list",            (200, 403, 200, 404, 401), _scan_kwargs),
    Row("get",    "api-snapshot-list",              (200, 403, 200, 404, 401)),
    Row("post",   "api-snapshot-list",              (201, 403, 403, 404, 401),
        lambda w, r: ({}, {"name": f"snap-{r}"})),
    Row("get",    "api-snapshot-detail",            (200, 403, 200, 404, 401), _snapshot_kwargs),
    Row("get",    "api-snapshot-download",          (200, 403, 200, 404, 401), _snapshot_kwargs),
    Row("get",    "api-snapshot-compare",           (200, 403, 200, 404, 401), _compare_kwargs),
    Row("get",    "api-item-list",                  (200, 403, 200, 404, 401)),
    Row("get",    "api-item-detail",                (200, 403, 200, 404, 401),
        lambda w, r: ({"item_id": w.reviewed_item_id}, {})),
    Row("get",    "api-item-export",                (200, 403, 200, 404, 401)),
    Row("get",    "api-webhook-list",               (200, 403, 403, 404, 401)),
    Row("post",   "api-webhook-list",               (201, 403, 403, 404, 401),
        lambda w, r: ({}, {"url": "http://127.0.0.1:9/hook", "events": ["snapshot.created"]})),
    Row("get",    "api-webhook-detail",             (200, 403, 403, 404, 401), _webhook_kwargs),
    Row("patch",  "api-webhook-detail",             (200, 403, 403, 404, 401),
        lambda w, r: (_webhook_kwargs(w, r)[0], {"description": "CI"})),
    Row("delete", "api-webhook-detail",             (204, 403, 403, 404, 401), _webhook_kwargs),
    Row("get",    "api-webhook-secret",             (200, 403, 403, 404, 401), _webhook_kwargs),
    Row("post",   "api-webhook-test",               (202, 403, 403, 404, 401), _webhook_kwargs),
    Row("get",    "api-webhook-delivery-list",      (200, 403, 403, 404, 401), _webhook_kwargs),
    Row("get",    "api-webhook-delivery-detail",    (200, 403, 403, 404, 401), _delivery_kwargs),
    Row("post",   "api-webhook-redeliver",          (202, 403, 403, 404, 401), _delivery_kwargs),
]
# fmt: on


@pytest.fixture
def world(project, owner, annotator, annotator2, reviewer, outsider) -> World:
    acknowledge_guidelines(project, owner, annotator, annotator2, reviewer)
    upload = _jsonl_upload("first.jsonl", b'{"text": "imported"}\n')
    job = import_create(project=project, user=owner, file_name=upload.name, fileobj=upload)
    names = [label.name for label in label_list(project=project)]
    tasks = []
    for _ in range(2):  # two items the annotators disagree on: one is decided (snapshots need it), one stays open
        item = claim_next(annotator=annotator, project=project).item
        for user, name in ((annotator, names[0]), (annotator2, names[1])):
            assert claim_next(annotator=user, project=project).item == item
            annotation_submit(annotator=user, item=item, value={"label": name}, label_names=names)
        tasks.append(ReviewTask.objects.select_related("item__project").get(item=item, status=ReviewStatus.OPEN))
    review_decide(reviewer=owner, task=tasks[1], value={"label": names[0]})
    task, item = tasks[0], tasks[0].item
    scan = NoiseScan.objects.create(
        project=project, created_by=owner, status=ScanStatus.SUCCEEDED, finished_at=timezone.now()
    )
    snapshots = tuple(snapshot_create(project=project, user=owner, name=f"s{n}").pk for n in (1, 2))
    users = {"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider}
    endpoint = endpoint_create(project=project, user=owner, url="http://127.0.0.1:9/hook", events=["run.failed"])
    delivery = send_test_event(endpoint=endpoint)
    return World(
        project=project, users=users, import_job_id=job.pk, member_id=annotator2.pk,
        label_id=label_list(project=project)[0].pk, task_id=task.pk, reviewed_item_id=item.pk, scan_id=scan.pk,
        snapshot_ids=snapshots, webhook_id=endpoint.pk, delivery_id=delivery.pk,
    )


def api_client(world: World, role: str) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=world.users[role]).key}")
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: f"{row.method}-{row.name}")
def test_api_status_per_role(world, row, role):
    extra_kwargs, body = row.prepare(world, role)
    kwargs = {"project_id": world.project.pk, **extra_kwargs} if row.in_project else {}
    url = reverse(row.name, kwargs=kwargs)
    client = api_client(world, role)
    response = getattr(client, row.method)(url, body, format="multipart" if row.multipart else "json")
    expected = row.expected[ROLES.index(role)]
    assert response.status_code == expected, getattr(response, "data", response)
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"


def test_every_route_is_in_the_matrix():
    """Every method of every annotation API route has its row: an endpoint added without one fails here."""
    ours = api_routes(*(module.api_urlpatterns for module in AREA_URLS))
    assert ours == {(row.method, row.name) for row in MATRIX}


def test_the_table_above_is_the_matrix():
    assert matrix_table(__doc__) == [(row.method, row.expected) for row in MATRIX]
