"""The settings page's Members section: add an existing account or create one (the API's service, its one-time
password shown on that answer only), refusals that say what to do, and a page that lands back on the section."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from annotation.models import AccountSetup, Membership, Project, Role, TaskType
from annotation.projects.views import MEMBER_CREATED, MEMBER_ROLE_SET, MEMBER_TAKEN, MEMBER_UNKNOWN
from tests.fixtures.pages import url


def _members_section(html: str) -> str:
    return html[html.index('id="members"') :]


def test_adding_a_member_lands_on_the_members_section_with_a_worded_notice(client, project, owner, outsider):
    client.force_login(owner)
    response = client.post(url("member-set", project.pk), {"username": "outsider", "role": "reviewer"})
    assert response.status_code == 302 and response.url == url("project-settings", project.pk) + "#members"
    assert Membership.objects.get(project=project, user=outsider).role == Role.REVIEWER

    page = client.get(response.url).content.decode()
    notice = MEMBER_ROLE_SET.format(username="outsider", role="a reviewer")
    assert notice == "User “outsider” is now a reviewer of this project."
    assert notice in _members_section(page)
    assert notice not in page[: page.index('id="members"')]  # not in the list at the top, out of sight


def test_a_username_that_is_also_a_role_name_reads_as_a_user(client, project, owner, reviewer):
    client.force_login(owner)
    response = client.post(url("member-set", project.pk), {"username": "reviewer", "role": "annotator"}, follow=True)
    assert "User “reviewer” is now an annotator of this project." in response.content.decode()


def test_member_forms_post_back_to_the_members_section(client, project, owner):
    client.force_login(owner)
    page = client.get(url("project-settings", project.pk)).content.decode()
    action = f'action="{url("member-set", project.pk)}#members"'
    assert page.count(action) == Membership.objects.filter(project=project).count() + 1  # each row, and Add


def test_an_unknown_username_says_how_to_create_the_account(client, project, owner):
    client.force_login(owner)
    response = client.post(url("member-set", project.pk), {"username": "nobody", "role": "annotator"})
    assert response.status_code == 400
    assert MEMBER_UNKNOWN.format(username="nobody") in response.content.decode()
    assert "Create this account" in MEMBER_UNKNOWN
    assert not get_user_model().objects.filter(username="nobody").exists()


def test_an_owner_creates_an_account_and_sees_its_one_time_password_once(client, project, owner):
    client.force_login(owner)
    response = client.post(
        url("member-set", project.pk),
        {"username": "newbie", "role": "annotator", "create": "on", "email": "newbie@example.org"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]  # the password is not kept in the browser's cache
    user = get_user_model().objects.get(username="newbie")
    assert user.email == "newbie@example.org"
    assert Membership.objects.get(project=project, user=user).role == Role.ANNOTATOR
    assert AccountSetup.objects.get(user=user).must_change_password

    section = _members_section(response.content.decode())
    assert MEMBER_CREATED.format(username="newbie", role="an annotator") in section
    password = section.split('id="one-time-password-value">', 1)[1].split("<", 1)[0]
    assert user.check_password(password)
    # Shown on that answer only: the next visit to the page has no trace of it.
    assert password not in client.get(url("project-settings", project.pk)).content.decode()


def test_creating_an_account_that_exists_says_to_untick_the_box(client, project, owner, outsider):
    client.force_login(owner)
    response = client.post(
        url("member-set", project.pk), {"username": "outsider", "role": "annotator", "create": "on"}
    )
    assert response.status_code == 400
    assert MEMBER_TAKEN.format(username="outsider") in response.content.decode()
    assert not Membership.objects.filter(project=project, user=outsider).exists()


def test_only_owners_create_accounts(client, project, reviewer):
    client.force_login(reviewer)
    response = client.post(url("member-set", project.pk), {"username": "sneaky", "role": "owner", "create": "on"})
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="sneaky").exists()


def test_spans_may_overlap_is_a_span_projects_setting_only(client, owner):
    client.force_login(owner)
    page = client.get(url("project-create")).content.decode()
    assert '<div class="span-only" id="span-overlap">' in page  # hidden by app.css unless spans is picked
    common = {"overlap": 2, "lease_seconds": 900, "allow_overlapping_spans": "on", "routing_policy": "fixed"}
    for name, task_type in (("Sentiment", TaskType.SINGLE_LABEL), ("Entities", TaskType.SPANS)):
        client.post(url("project-create"), {"name": name, "task_type": task_type, "labels": "A, B", **common})
    assert Project.objects.get(name="Sentiment").allow_overlapping_spans is False
    assert Project.objects.get(name="Entities").allow_overlapping_spans is True


def test_an_account_created_twice_at_once_is_a_clear_error_not_a_500(owner, monkeypatch):
    """A double click on "Add member" with "Create this account" ticked: the second request passed the name check
    before the first saved, and hit the database's unique constraint."""
    from django.db.models import QuerySet

    from annotation.projects.services import user_create_with_one_time_password
    from core.errors import ServiceError

    user_create_with_one_time_password(username="twin", created_by=owner)
    monkeypatch.setattr(QuerySet, "exists", lambda self: False)  # the second request's check ran before the save
    with pytest.raises(ServiceError) as refused:
        user_create_with_one_time_password(username="twin", created_by=owner)
    assert refused.value.field == "username" and "twin" in refused.value.message


def test_an_email_without_create_is_refused_not_dropped():
    from annotation.projects.forms import MemberForm
    from annotation.projects.services import EMAIL_WITHOUT_CREATE

    form = MemberForm({"username": "ann", "role": Role.ANNOTATOR, "email": "ann@example.org"})
    assert not form.is_valid() and form.errors["email"] == [EMAIL_WITHOUT_CREATE]
    created = {"username": "ann", "role": Role.ANNOTATOR, "email": "ann@example.org", "create": "on"}
    assert MemberForm(created).is_valid()


def test_the_members_api_refuses_an_email_without_create_too(project, owner):
    from rest_framework.test import APIClient

    from annotation.projects.services import EMAIL_WITHOUT_CREATE

    api = APIClient()
    api.force_authenticate(owner)
    body = {"username": "annotator", "role": "annotator", "email": "a@example.org"}
    response = api.post(f"/api/projects/{project.pk}/members/", body, format="json")
    assert response.status_code == 400 and response.json()["field"] == "email"
    assert response.json()["detail"] == EMAIL_WITHOUT_CREATE


def test_an_owner_removes_a_member_from_the_page_but_never_the_last_owner(client, project, owner, annotator):
    """A tester found no way to take someone out of a project in the browser (the API has DELETE)."""
    client.force_login(owner)
    page = client.get(url("project-settings", project.pk)).content.decode()
    remove = f"/projects/{project.pk}/settings/members/{annotator.pk}/remove/"
    assert remove in page
    done = client.post(remove, follow=True)
    assert "is no longer a member of this project" in done.content.decode()
    assert not Membership.objects.filter(project=project, user=annotator).exists()
    last = client.post(f"/projects/{project.pk}/settings/members/{owner.pk}/remove/", follow=True)
    assert Membership.objects.filter(project=project, user=owner, role=Role.OWNER).exists()
    assert "A project needs at least one owner" in last.content.decode()
    client.force_login(annotator)
    assert client.post(f"/projects/{project.pk}/settings/members/{owner.pk}/remove/").status_code == 404
