"""Every browser page × every role: members get what their role allows, the wrong role 403,
outsiders 404 (ids reveal nothing), anonymous visitors the login page."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.urls import reverse

from annotation.models import Item, Label
from annotation.projects.services import guideline_current

LOGIN = "/accounts/login/"
ALL_MEMBERS = frozenset({"owner", "annotator", "reviewer"})
ANNOTATORS = frozenset({"owner", "annotator"})
OWNER = frozenset({"owner"})


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    allowed: frozenset[str]
    ok: int  # what an allowed member gets for this (deliberately bare) request
    kwargs: tuple[str, ...] = ("project_id",)
    data: dict = field(default_factory=dict)


PAGES = [
    Page("project-detail", "get", ALL_MEMBERS, 200),
    Page("project-settings", "get", OWNER, 200),
    Page("project-settings", "post", OWNER, 400),
    Page("label-create", "post", OWNER, 400),
    Page("label-update", "post", OWNER, 400, ("project_id", "label_id")),
    Page("member-set", "post", OWNER, 400),
    Page("round-settings", "post", OWNER, 400),
    Page(
        "round-settings",
        "post",
        OWNER,
        302,
        data={
            "queue_order": "margin",
            "random_share": "0.3",
            "disagreement_confidence": "0.8",
            "rating_criteria": "correct, helpful",
        },
    ),
    Page("guideline-detail", "get", ALL_MEMBERS, 200),
    Page("guideline-publish", "get", OWNER, 200),
    Page("guideline-publish", "post", OWNER, 400),
    Page("guideline-ack", "post", ALL_MEMBERS, 302, data={"version": "current"}),
    Page("annotate", "get", ANNOTATORS, 200),
    Page("annotate-progress", "get", ANNOTATORS, 200),
    Page("annotate-undo", "post", ANNOTATORS, 400),
    Page("annotate-submit", "post", ANNOTATORS, 400, ("project_id", "item_id")),
    Page("annotate-skip", "post", ANNOTATORS, 400, ("project_id", "item_id")),
    Page("annotate-draft", "post", ANNOTATORS, 409, ("project_id", "item_id")),
    Page("item-overrule", "post", OWNER, 400, ("project_id", "item_id")),
]
ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")


def _url(page: Page, project) -> str:
    ids = {
        "project_id": project.pk,
        "item_id": Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True).first(),
        "label_id": Label.objects.filter(project=project).values_list("pk", flat=True).first(),
    }
    return reverse(page.name, kwargs={k: ids[k] for k in page.kwargs})


def _expected(page: Page, role: str) -> int:
    if role == "anonymous":
        return 302
    if role == "outsider":
        return 404
    return page.ok if role in page.allowed else 403


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"{p.method}-{p.name}")
def test_page_status_per_role(client, project, users_by_role, page, role):
    if role != "anonymous":
        client.force_login(users_by_role[role])
    data = dict(page.data)
    if data.get("version") == "current":
        data["version"] = guideline_current(project=project).pk
    response = getattr(client, page.method)(_url(page, project), data)
    assert response.status_code == _expected(page, role), response.content[:500]
    if role == "anonymous":
        assert response["Location"].startswith(LOGIN)


@pytest.mark.parametrize("role", ["owner", "annotator", "reviewer", "outsider"])
def test_any_logged_in_user_may_open_the_create_form(client, users_by_role, role):
    client.force_login(users_by_role[role])
    assert client.get(reverse("project-create")).status_code == 200


def test_anonymous_is_sent_to_login_from_the_create_form(client, db):
    response = client.get(reverse("project-create"))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_an_item_of_another_project_is_not_found(client, project, other_project, annotator):
    foreign = Item.objects.get(project=other_project)
    client.force_login(annotator)
    for name in ("annotate-submit", "annotate-skip", "annotate-draft"):
        url = reverse(name, kwargs={"project_id": project.pk, "item_id": foreign.pk})
        assert client.post(url, {"label": "positive", "reason": "x"}).status_code == 404


def test_a_label_of_another_project_is_not_found(client, project, other_project, owner):
    foreign = Label.objects.filter(project=other_project).first()
    client.force_login(owner)
    url = reverse("label-update", kwargs={"project_id": project.pk, "label_id": foreign.pk})
    assert client.post(url, {f"label-{foreign.pk}-name": "hijack"}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.name != "hijack"


def test_a_guideline_version_of_another_project_cannot_be_acknowledged(client, project, other_project, annotator):
    from annotation.projects.services import guideline_publish

    stranger_version = guideline_publish(project=other_project, author=other_project.created_by, body="Theirs")
    client.force_login(annotator)
    response = client.post(reverse("guideline-ack", args=[project.pk]), {"version": stranger_version.pk})
    assert response.status_code == 404
