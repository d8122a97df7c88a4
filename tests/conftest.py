"""Shared fixtures: one user per role, a small project, and item factories.

Fixtures build state through the services, as a user would, so tests exercise the real paths.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from annotation.models import Item, Project, Role
from annotation.services.projects import membership_set, project_create
from annotation.text import content_hash

ROLES = ("owner", "annotator", "reviewer", "outsider")


def pytest_unconfigure(config):
    """Stop this run's embedded redis-server (tests get their own socket, see config/settings/test.py).

    A hook rather than a session fixture: Django's setup starts the server even when no test runs (a
    collection error, a wrong path, -k that selects nothing), and a fixture's teardown would never come.
    """
    if settings.configured and not settings.REDIS_URL:
        from config.embedded_redis import shutdown

        shutdown(settings.EMBEDDED_REDIS_SOCKET)


def make_user(username: str, **extra):
    return get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)


@pytest.fixture
def owner(db):
    return make_user("owner")


@pytest.fixture
def annotator(db):
    return make_user("annotator1")


@pytest.fixture
def annotator2(db):
    return make_user("annotator2")


@pytest.fixture
def reviewer(db):
    return make_user("reviewer")


@pytest.fixture
def outsider(db):
    return make_user("outsider")


def add_items(project: Project, texts: list[str], **fields) -> list[Item]:
    items = [
        Item(project=project, text=t, content_hash=content_hash(t), **fields)
        for t in texts
    ]
    return Item.objects.bulk_create(items)


@pytest.fixture
def project(owner, annotator, annotator2, reviewer) -> Project:
    """A sentiment project with guidelines v1, two annotators, a reviewer, and five items."""
    project = project_create(
        owner=owner,
        name="Sentiment",
        labels=["positive", "negative", "neutral"],
        guidelines="# Sentiment\n\nPick the feeling the *writer* expresses.",
    )
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    membership_set(project=project, user=annotator2, role=Role.ANNOTATOR)
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    add_items(project, [f"review number {i}" for i in range(5)])
    return project


@pytest.fixture
def other_project(db) -> Project:
    stranger = make_user("stranger")
    project = project_create(owner=stranger, name="Other", labels=["a", "b"])
    add_items(project, ["other text"])
    return project


@pytest.fixture
def users_by_role(owner, annotator, reviewer, outsider) -> dict:
    return {"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider}


def acknowledge_guidelines(project: Project, *users) -> None:
    from annotation.services.projects import guideline_acknowledge, guideline_current

    current = guideline_current(project=project)
    if current is not None:
        for user in users:
            guideline_acknowledge(user=user, version=current)
