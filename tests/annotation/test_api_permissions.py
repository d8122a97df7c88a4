"""Permission matrix of the annotation API (annotation/apis.py): every endpoint × every role.

Each caller authenticates with their own API token. Outsiders get 404 on everything inside a project
(ids reveal nothing), members whose role does not allow the operation 403, anonymous callers 401.
An allowed request is a valid one, so its status is the operation's success code.

    endpoint                                        owner  annotator  reviewer  outsider  anonymous
    POST   auth/token/                               200     200        200       200       400 (bad login)
    GET    projects/                                 200     200        200       200       401
    POST   projects/create/                          201     201        201       201       401
    GET    projects/{id}/                            200     200        200       404       401
    PATCH  projects/{id}/update/                     200     403        403       404       401
    DELETE projects/{id}/archive/                    204     403        403       404       401
    GET    projects/{id}/members/                    200     200        200       404       401
    POST   projects/{id}/members/set/                200     403        403       404       401
    GET    projects/{id}/labels/                     200     200        200       404       401
    POST   projects/{id}/labels/create/              201     403        403       404       401
    GET    projects/{id}/guidelines/                 200     200        200       404       401
    GET    projects/{id}/guidelines/current/         200     200        200       404       401
    POST   projects/{id}/guidelines/publish/         201     403        403       404       401
    POST   projects/{id}/guidelines/acknowledge/     200     200        200       404       401
    POST   projects/{id}/imports/create/             201     403        403       404       401
    GET    projects/{id}/imports/{job}/              200     403        403       404       401
    POST   projects/{id}/next/                       200     200        403       404       401
    POST   projects/{id}/items/{item}/submit/        200     200        403       404       401
    POST   projects/{id}/items/{item}/skip/          200     200        403       404       401
    POST   projects/{id}/items/{item}/draft/         200     200        403       404       401
    POST   projects/{id}/undo/                       200     200        403       404       401
    GET    projects/{id}/progress/                   200     200        200       404       401
    GET    projects/{id}/progress/me/                200     200        403       404       401
    GET    projects/{id}/annotations/export/         200     403        200       404       401

`MATRIX` below is this table as code: `test_the_table_above_is_the_matrix` keeps the two equal, and
`test_every_route_is_in_the_matrix` fails when an endpoint is added without its row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.annotate import urls as annotate_urls
from annotation.annotate.services import annotation_submit, claim_next
from annotation.imports import urls as imports_urls
from annotation.imports.services import import_create
from annotation.models import Item, Project, Role
from annotation.projects import urls as projects_urls
from annotation.projects.selectors import label_list
from annotation.projects.services import token_issue
from tests.fixtures.people import acknowledge_guidelines

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
ANNOTATING_ROLES = ("owner", "annotator")
HTTP_METHODS = ("GET", "POST", "PATCH", "DELETE")

OUR_API_MODULES = {"annotation.projects.apis", "annotation.imports.apis", "annotation.annotate.apis"}


@dataclass(frozen=True)
class World:
    project: Project
    users: dict[str, Any]
    import_job_id: int


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
    #   method    url name                      owner annot review outsider anon
    Row("post",   "api-token",                  (200, 200, 200, 200, 400),
        lambda w, r: ({}, _token_body(w, r)), in_project=False),
    Row("get",    "api-project-list",           (200, 200, 200, 200, 401), in_project=False),
    Row("post",   "api-project-create",         (201, 201, 201, 201, 401),
        lambda w, r: ({}, {"name": "Mine", "labels": ["yes", "no"]}), in_project=False),
    Row("get",    "api-project-detail",         (200, 200, 200, 404, 401)),
    Row("patch",  "api-project-update",         (200, 403, 403, 404, 401),
        lambda w, r: ({}, {"lease_seconds": 600})),
    Row("delete", "api-project-archive",        (204, 403, 403, 404, 401)),
    Row("get",    "api-member-list",            (200, 200, 200, 404, 401)),
    Row("post",   "api-member-set",             (200, 403, 403, 404, 401),
        lambda w, r: ({}, {"username": "outsider", "role": Role.ANNOTATOR})),
    Row("get",    "api-label-list",             (200, 200, 200, 404, 401)),
    Row("post",   "api-label-create",           (201, 403, 403, 404, 401),
        lambda w, r: ({}, {"name": "mixed"})),
    Row("get",    "api-guideline-list",         (200, 200, 200, 404, 401)),
    Row("get",    "api-guideline-current",      (200, 200, 200, 404, 401)),
    Row("post",   "api-guideline-publish",      (201, 403, 403, 404, 401),
        lambda w, r: ({}, {"body": "# Sentiment v2\n\nSarcasm is negative.", "change_note": "sarcasm"})),
    Row("post",   "api-guideline-acknowledge",  (200, 200, 200, 404, 401)),
    Row("post",   "api-import-create",          (201, 403, 403, 404, 401),
        lambda w, r: ({}, _upload(w, r)), multipart=True),
    Row("get",    "api-import-detail",          (200, 403, 403, 404, 401),
        lambda w, r: ({"job_id": w.import_job_id}, {})),
    Row("post",   "api-next",                   (200, 200, 403, 404, 401)),
    Row("post",   "api-submit",                 (200, 200, 403, 404, 401),
        lambda w, r: (_item_kwargs(w, r), {"value": {"label": "positive"}})),
    Row("post",   "api-skip",                   (200, 200, 403, 404, 401),
        lambda w, r: (_item_kwargs(w, r), {"reason": "not English"})),
    Row("post",   "api-draft",                  (200, 200, 403, 404, 401),
        lambda w, r: (_item_kwargs(w, r), {"value": {"label": "neutral"}})),
    Row("post",   "api-undo",                   (200, 200, 403, 404, 401), _undo_request),
    Row("get",    "api-progress",               (200, 200, 200, 404, 401)),
    Row("get",    "api-my-progress",            (200, 200, 403, 404, 401)),
    Row("get",    "api-annotation-export",      (200, 403, 200, 404, 401)),
]
# fmt: on


@pytest.fixture
def world(project, owner, annotator, reviewer, outsider) -> World:
    acknowledge_guidelines(project, owner, annotator, reviewer)
    upload = _jsonl_upload("first.jsonl", b'{"text": "imported"}\n')
    job = import_create(project=project, user=owner, file_name=upload.name, fileobj=upload)
    users = {"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider}
    return World(project=project, users=users, import_job_id=job.pk)


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
    """An endpoint added to apis.py without a matrix row fails here."""
    ours = {
        pattern.name
        for pattern in [*projects_urls.api_urlpatterns, *imports_urls.api_urlpatterns, *annotate_urls.api_urlpatterns]
        if getattr(pattern.callback, "cls", None) is not None
        and (pattern.callback.cls.__module__ in OUR_API_MODULES or pattern.name == "api-token")
    }
    assert ours == {row.name for row in MATRIX}


def test_the_table_above_is_the_matrix():
    rows = [line.split() for line in __doc__.splitlines() if line.strip().split(" ")[0] in HTTP_METHODS]
    table = [(cells[0].lower(), tuple(int(c) for c in cells[2:7])) for cells in rows]
    assert table == [(row.method, row.expected) for row in MATRIX]
