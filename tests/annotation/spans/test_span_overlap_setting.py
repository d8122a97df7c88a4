"""Whether spans may overlap is a setting of the settings page and the project API: turning it on is always
allowed; turning it off is refused, changing nothing, while a stored span value the project reuses overlaps."""

from __future__ import annotations

import logging

import pytest

from annotation.models import AnnotationStatus, Decision, DecisionSource, Draft, Item, ReviewTask
from annotation.projects.selectors import SPAN_OVERLAP_EXAMPLES, span_overlaps
from annotation.projects.services import SPAN_OVERLAP_NOT_SPANS, project_span_overlap_set
from core.errors import ServiceError
from tests.fixtures.api import api_as
from tests.fixtures.pages import url
from tests.fixtures.people import add_items
from tests.fixtures.rounds import output_row, rating_row, run_row
from tests.fixtures.span_loop import annotate_all
from tests.fixtures.spans import item_with, span, span_project

ADA = "Ada Lovelace met Charles Babbage in London."
NESTED = [span(ADA, "Ada Lovelace", "PER"), span(ADA, "Lovelace", "LOC")]  # "Lovelace" inside "Ada Lovelace"
APART = [span(ADA, "Ada Lovelace", "PER"), span(ADA, "London", "LOC")]


def _settings_post(project, **extra) -> dict:
    """What the settings form posts: the project's current values, unticked overlap unless given."""
    data = {
        "span_overlap_shown": "1",
        "overlap": project.overlap,
        "lease_seconds": project.lease_seconds,
        "routing_policy": project.routing_policy,
        "routing_budget": project.routing_budget,
        "audit_rate": project.audit_rate,
        "slice_fields": "",
    }
    data.update(extra)
    return data


@pytest.fixture
def overlapping(owner, annotator):
    """A span project that allows overlaps, where an annotator marked "Lovelace" inside "Ada Lovelace"."""
    project = span_project(owner, [annotator], allow_overlap=True)
    annotate_all(project, annotator, {"Ada": [("Ada Lovelace", "PER"), ("Lovelace", "LOC")]})
    return project


def test_the_settings_page_turns_overlaps_on_and_logs_who(
    client, owner, annotator, caplog, django_capture_on_commit_callbacks
):
    project = span_project(owner, [annotator])
    client.force_login(owner)
    page = client.get(url("project-settings", project.pk)).content.decode()
    assert 'id="span-overlap"' in page and 'name="allow_overlapping_spans"' in page
    logs = caplog.at_level(logging.INFO, logger="annotation.projects.services")
    with logs, django_capture_on_commit_callbacks(execute=True):  # logged once the change is committed
        response = client.post(
            url("project-settings", project.pk), _settings_post(project, allow_overlapping_spans="on")
        )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.allow_overlapping_spans is True
    assert f"project {project.pk}: allow_overlapping_spans False -> True by owner" in caplog.text


def test_the_settings_page_refuses_turning_overlaps_off_and_changes_nothing(client, owner, overlapping):
    project = overlapping
    client.force_login(owner)
    response = client.post(url("project-settings", project.pk), _settings_post(project, overlap=3, lease_seconds=120))
    assert response.status_code == 400
    page = response.content.decode()
    ada = item_with(project, "Ada")
    assert f"1 stored span value would then be invalid (1 annotation), on item #{ada.pk}." in page
    project.refresh_from_db()
    # Nothing in the same post was saved: not the overlap flag, not the other settings.
    assert (project.allow_overlapping_spans, project.overlap, project.lease_seconds) == (True, 2, 900)


def test_the_settings_page_turns_overlaps_off_when_nothing_overlaps(
    client, owner, annotator, caplog, django_capture_on_commit_callbacks
):
    project = span_project(owner, [annotator], allow_overlap=True, overlap=1)
    annotate_all(project, annotator, {"Ada": [("Ada Lovelace", "PER"), ("London", "LOC")]})
    client.force_login(owner)
    logs = caplog.at_level(logging.INFO, logger="annotation.projects.services")
    with logs, django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("project-settings", project.pk), _settings_post(project))
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.allow_overlapping_spans is False
    assert "allow_overlapping_spans True -> False by owner" in caplog.text


def test_a_post_without_the_box_leaves_overlaps_as_they_are(client, owner, annotator):
    project = span_project(owner, [annotator], allow_overlap=True)
    client.force_login(owner)
    post = _settings_post(project, lease_seconds=120)
    del post["span_overlap_shown"]  # a client whose form did not show the box: its absence means nothing
    assert client.post(url("project-settings", project.pk), post).status_code == 302
    project.refresh_from_db()
    assert (project.allow_overlapping_spans, project.lease_seconds) == (True, 120)


def test_a_label_project_has_no_overlap_setting(client, project, owner):
    client.force_login(owner)
    page = client.get(url("project-settings", project.pk)).content.decode()
    assert 'name="allow_overlapping_spans"' not in page
    response = client.post(url("project-settings", project.pk), _settings_post(project, allow_overlapping_spans="on"))
    assert response.status_code == 302  # the field is ignored where it has no meaning
    project.refresh_from_db()
    assert project.allow_overlapping_spans is False


def test_the_api_turns_overlaps_on_then_refuses_off_naming_the_items(owner, overlapping):
    project = overlapping
    api = api_as(owner)
    path = f"/api/projects/{project.pk}/"
    refused = api.patch(path, {"allow_overlapping_spans": False, "lease_seconds": 60}, format="json")
    assert refused.status_code == 400
    body = refused.json()
    assert body["field"] == "allow_overlapping_spans"
    assert f"#{item_with(project, 'Ada').pk}" in body["detail"] and "1 annotation" in body["detail"]
    project.refresh_from_db()
    assert (project.allow_overlapping_spans, project.lease_seconds) == (True, 900)
    kept = api.patch(path, {"allow_overlapping_spans": True}, format="json")
    assert kept.status_code == 200 and kept.json()["allow_overlapping_spans"] is True


def test_the_api_turns_overlaps_off_once_the_overlap_is_gone(owner, overlapping):
    project = overlapping
    Decision.objects.create(item=item_with(project, "Ada"), value={"spans": APART}, source=DecisionSource.REVIEWER)
    from annotation.models import Annotation

    Annotation.objects.filter(item__project=project).update(status=AnnotationStatus.RETRACTED)  # undone: history
    response = api_as(owner).patch(f"/api/projects/{project.pk}/", {"allow_overlapping_spans": False}, format="json")
    assert response.status_code == 200 and response.json()["allow_overlapping_spans"] is False
    project.refresh_from_db()
    assert project.allow_overlapping_spans is False


def test_the_api_refuses_the_setting_on_a_label_project(project, owner):
    api = api_as(owner)
    refused = api.patch(f"/api/projects/{project.pk}/", {"allow_overlapping_spans": True}, format="json")
    assert refused.status_code == 400 and refused.json()["detail"] == SPAN_OVERLAP_NOT_SPANS
    same = api.patch(f"/api/projects/{project.pk}/", {"allow_overlapping_spans": False}, format="json")
    assert same.status_code == 200  # a client sending back what it read changes nothing


def test_annotators_and_reviewers_cannot_change_it(annotator, reviewer, overlapping):
    from annotation.models import Membership, Role

    Membership.objects.create(project=overlapping, user=reviewer, role=Role.REVIEWER)
    for user in (annotator, reviewer):
        response = api_as(user).patch(
            f"/api/projects/{overlapping.pk}/", {"allow_overlapping_spans": False}, format="json"
        )
        assert response.status_code == 403
    overlapping.refresh_from_db()
    assert overlapping.allow_overlapping_spans is True


# --- Where spans are kept ----------------------------------------------------------------------------


def _only_item(project) -> Item:
    return item_with(project, "Ada")


def _final(project, user):
    Decision.objects.create(item=_only_item(project), value={"spans": NESTED}, source=DecisionSource.REVIEWER)


def _prelabel(project, user):
    Item.objects.filter(pk=_only_item(project).pk).update(prelabel={"spans": NESTED})


def _suggestion(project, user):
    ReviewTask.objects.create(
        project=project, item=_only_item(project), reasons=["model"], suggested_value={"spans": NESTED}
    )


def _correction(project, user):
    run = run_row(project, user, task="spans")
    output = output_row(run, _only_item(project), "PER")
    rating_row(output, user, verdict="wrong", correction={"spans": NESTED})


@pytest.mark.parametrize(
    ("store", "source"),
    [
        (_final, "final label"),
        (_prelabel, "pre-annotation"),
        (_suggestion, "review suggestion"),
        (_correction, "rating correction"),
    ],
)
def test_every_place_spans_are_kept_is_checked(owner, store, source):
    project = span_project(owner, allow_overlap=True)
    store(project, owner)
    report = span_overlaps(project=project)
    assert (report.count, report.by_source, report.item_ids) == (1, {source: 1}, [_only_item(project).pk])
    with pytest.raises(ServiceError, match=f"1 {source}\\)"):
        project_span_overlap_set(project=project, allow=False, user=owner)
    project.refresh_from_db()
    assert project.allow_overlapping_spans is True


def test_history_drafts_and_closed_reviews_do_not_block(owner, annotator):
    project = span_project(owner, [annotator], allow_overlap=True)
    item = _only_item(project)
    old = Decision.objects.create(item=item, value={"spans": NESTED}, source=DecisionSource.REVIEWER)
    Decision.objects.create(item=item, value={"spans": APART}, source=DecisionSource.REVIEWER)  # supersedes it
    assert old.pk
    Draft.objects.create(item=item, annotator=annotator, value={"spans": NESTED})  # unvalidated work in progress
    ReviewTask.objects.create(
        project=project, item=item, reasons=["model"], suggested_value={"spans": NESTED}, status="done"
    )
    assert span_overlaps(project=project).count == 0
    project_span_overlap_set(project=project, allow=False, user=owner)
    project.refresh_from_db()
    assert project.allow_overlapping_spans is False


def test_the_check_streams_with_one_query_per_place_and_names_a_few_items(owner, django_assert_max_num_queries):
    project = span_project(owner, allow_overlap=True)
    texts = [f"Ada Lovelace number {n} met Babbage." for n in range(40)]
    items = add_items(project, texts)
    nested = [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "LOC"}]
    apart = [{"start": 0, "end": 3, "label": "PER"}, {"start": 4, "end": 12, "label": "LOC"}]
    Item.objects.filter(pk__in=[i.pk for i in items[:30]]).update(prelabel={"spans": nested})
    Item.objects.filter(pk__in=[i.pk for i in items[30:]]).update(prelabel={"spans": apart})
    with django_assert_max_num_queries(5):
        report = span_overlaps(project=project)
    assert report.count == 30 and len(report.item_ids) == SPAN_OVERLAP_EXAMPLES
    with pytest.raises(ServiceError, match=r"30 stored span values .* and others"):
        project_span_overlap_set(project=project, allow=False, user=owner)
