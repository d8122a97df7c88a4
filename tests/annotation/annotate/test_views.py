"""The annotate page through Django's test client: submit → next in one round trip, autosave, skip, undo,
unsure, lease lost, all done, blind."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from annotation.annotate import services as svc
from annotation.annotate.services import DRAFT_NOT_HELD, LEASE_LOST, NOTHING_TO_UNDO, SKIP_REASON_REQUIRED
from annotation.annotate.views import PROGRESS_EVENT
from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    ClaimStatus,
    Draft,
    Label,
    Role,
    TaskType,
)
from annotation.projects.services import (
    membership_set,
    project_create,
)
from tests.fixtures.pages import HTMX, held_item, url
from tests.fixtures.people import acknowledge_guidelines, add_items, make_user

LABELS = ["positive", "negative", "neutral"]


# --- Annotate ------------------------------------------------------------------------------------


def test_annotate_page_shows_item_labels_hotkeys_progress_and_guidelines(annotating, project):
    page = annotating.get(url("annotate", project.pk)).content.decode()
    item = Claim.objects.get(annotator__username="annotator1", status=ClaimStatus.ACTIVE).item
    assert item.text in page
    for label in Label.objects.filter(project=project):
        assert f'value="{label.name}" data-hotkey="{label.hotkey}"' in page
        assert f"--c: {label.color}" in page
    assert 'id="progress"' in page and f'hx-trigger="{PROGRESS_EVENT} from:body"' in page
    assert 'id="guide-panel"' in page and "<em>writer</em>" in page
    assert 'hx-trigger="change delay:500ms"' in page  # the autosave


def test_submit_answers_with_the_next_item_in_one_round_trip(annotating, project, annotator):
    first = held_item(annotator, project)
    response = annotating.post(url("annotate-submit", project.pk, first.pk), {"label": "negative"}, **HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"] == PROGRESS_EVENT
    html = response.content.decode()
    assert html.lstrip().startswith("{#") is False and 'id="workspace"' in html and "<html" not in html
    ann = Annotation.objects.get(item=first, annotator=annotator)
    assert ann.value == {"label": "negative"} and ann.guideline_version.version == 1
    nxt = Claim.objects.get(annotator=annotator, status=ClaimStatus.ACTIVE).item
    assert nxt.pk != first.pk and nxt.text in html and f">{first.text}<" not in html
    assert f"Saved item #{first.pk}" in html


def test_submit_without_javascript_redirects_to_the_next_item(annotating, project, annotator):
    first = held_item(annotator, project)
    response = annotating.post(url("annotate-submit", project.pk, first.pk), {"label": "neutral"})
    assert response.status_code == 302 and response["Location"] == url("annotate", project.pk)
    assert Annotation.objects.filter(item=first, annotator=annotator).exists()


def test_submit_records_unsure_and_the_note(annotating, project, annotator):
    item = held_item(annotator, project)
    annotating.post(
        url("annotate-submit", project.pk, item.pk), {"label": "neutral", "unsure": "1", "note": "mixed tone"}, **HTMX
    )
    ann = Annotation.objects.get(item=item, annotator=annotator)
    assert ann.unsure and ann.note == "mixed tone"


def test_a_refused_submit_keeps_the_item_and_what_was_picked(annotating, project, annotator):
    item = held_item(annotator, project)
    response = annotating.post(
        url("annotate-submit", project.pk, item.pk), {"label": "furious", "note": "kept"}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200  # htmx swaps 2xx only: the refusal is shown inside the workspace
    assert "Unknown label" in html and 'role="alert"' in html
    assert item.text in html and ">kept</textarea>" in html
    assert not Annotation.objects.exists()


def test_lease_lost_is_explained_and_the_next_item_shown(client, project, annotator, annotator2):
    third = make_user("annotator3")
    membership_set(project=project, user=third, role=Role.ANNOTATOR)
    acknowledge_guidelines(project, annotator, annotator2, third)
    t0 = timezone.now() - dt.timedelta(seconds=project.lease_seconds + 5)
    stale = svc.claim_next(annotator=annotator, project=project, now=t0).item
    for user in (annotator2, third):  # both slots go to others once the lease has expired
        claimed = svc.claim_next(annotator=user, project=project).item
        assert claimed.pk == stale.pk
        svc.annotation_submit(annotator=user, item=claimed, value={"label": "positive"}, label_names=LABELS)
    client.force_login(annotator)
    response = client.post(url("annotate-submit", project.pk, stale.pk), {"label": "negative"}, **HTMX)
    html = response.content.decode()
    assert LEASE_LOST.split(":")[0] in html
    assert Draft.objects.get(item=stale, annotator=annotator).value == {"label": "negative"}
    assert 'id="annotate-form"' in html and f"items/{stale.pk}/submit" not in html


def test_autosave_keeps_a_draft_and_the_page_restores_it(annotating, project, annotator):
    item = held_item(annotator, project)
    response = annotating.post(
        url("annotate-draft", project.pk, item.pk), {"label": "neutral", "unsure": "1", "note": "half sure"}, **HTMX
    )
    assert response.status_code == 200 and "Draft saved" in response.content.decode()
    draft = Draft.objects.get(item=item, annotator=annotator)
    assert (draft.value, draft.unsure, draft.note) == ({"label": "neutral"}, True, "half sure")
    page = annotating.get(url("annotate", project.pk)).content.decode()
    assert 'value="neutral" data-hotkey="3" checked' in page
    assert 'id="unsure" checked' in page and ">half sure</textarea>" in page and "Draft restored" in page


def test_autosave_refuses_an_item_not_held(annotating, project, annotator):
    item = held_item(annotator, project)
    annotating.post(url("annotate-submit", project.pk, item.pk), {"label": "positive"}, **HTMX)
    late = annotating.post(url("annotate-draft", project.pk, item.pk), {"label": "negative"}, **HTMX)
    assert DRAFT_NOT_HELD in late.content.decode()
    assert not Draft.objects.filter(item=item).exists()


def test_skip_needs_a_reason_then_moves_on(annotating, project, annotator):
    item = held_item(annotator, project)
    refused = annotating.post(url("annotate-skip", project.pk, item.pk), {"reason": "  "}, **HTMX)
    html = refused.content.decode()
    assert SKIP_REASON_REQUIRED in html and 'id="skip-panel" open' in html and item.text in html
    skipped = annotating.post(url("annotate-skip", project.pk, item.pk), {"reason": "not English"}, **HTMX)
    assert skipped["HX-Trigger"] == PROGRESS_EVENT
    claim = Claim.objects.get(item=item, annotator=annotator)
    assert (claim.status, claim.skip_reason) == (ClaimStatus.SKIPPED, "not English")
    assert f"Skipped item #{item.pk}" in skipped.content.decode()


def test_undo_brings_the_last_item_back_with_its_value(annotating, project, annotator):
    first = held_item(annotator, project)
    annotating.post(url("annotate-submit", project.pk, first.pk), {"label": "negative"}, **HTMX)
    response = annotating.post(url("annotate-undo", project.pk), **HTMX)
    html = response.content.decode()
    assert response["HX-Trigger"] == PROGRESS_EVENT
    assert first.text in html and 'value="negative" data-hotkey="2" checked' in html
    assert Annotation.objects.get(item=first).status == AnnotationStatus.RETRACTED
    # Submitting again stores the new value; the next item is the one held before the undo.
    again = annotating.post(url("annotate-submit", project.pk, first.pk), {"label": "positive"}, **HTMX)
    assert Annotation.objects.get(item=first, status=AnnotationStatus.SUBMITTED).value == {"label": "positive"}
    assert f">{first.text}<" not in again.content.decode()


def test_undo_without_javascript_links_back_to_the_item(annotating, project, annotator):
    first = held_item(annotator, project)
    annotating.post(url("annotate-submit", project.pk, first.pk), {"label": "negative"})
    response = annotating.post(url("annotate-undo", project.pk))
    assert response["Location"] == f"{url('annotate', project.pk)}?item={first.pk}"
    page = annotating.get(response["Location"]).content.decode()
    assert first.text in page and 'value="negative" data-hotkey="2" checked' in page


def test_undo_with_nothing_to_undo_says_so(annotating, project):
    response = annotating.post(url("annotate-undo", project.pk), **HTMX)
    assert NOTHING_TO_UNDO in response.content.decode()


def test_all_done_when_nothing_is_left(annotating, project, annotator):
    while (item := svc.claim_next(annotator=annotator, project=project).item) is not None:
        svc.annotation_submit(annotator=annotator, item=item, value={"label": "positive"}, label_names=LABELS)
    page = annotating.get(url("annotate", project.pk)).content.decode()
    assert "All done" in page and 'id="undo-button"' in page
    progress = annotating.get(url("annotate-progress", project.pk)).content.decode()
    assert '<strong id="my-submitted">5</strong>' in progress


def test_progress_fragment_counts_mine_and_the_projects(annotating, project, annotator):
    item = held_item(annotator, project)
    annotating.post(url("annotate-submit", project.pk, item.pk), {"label": "negative"}, **HTMX)
    html = annotating.get(url("annotate-progress", project.pk), **HTMX).content.decode()
    assert '<strong id="my-submitted">1</strong>' in html and "1 in hand" in html
    assert '<strong id="project-done">0</strong> of 5 items done' in html  # overlap 2: one annotation is not done


def test_multi_label_submit_toggles_into_a_list(client, owner, annotator):
    project = project_create(
        owner=owner, name="Topics", task_type=TaskType.MULTI_LABEL, labels=["sport", "politics", "art"]
    )
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    add_items(project, ["the match and the election"])
    client.force_login(annotator)
    page = client.get(url("annotate", project.pk)).content.decode()
    assert 'type="checkbox" name="labels" value="sport"' in page
    item = Claim.objects.get(annotator=annotator).item
    client.post(url("annotate-submit", project.pk, item.pk), {"labels": ["politics", "sport"]}, **HTMX)
    assert Annotation.objects.get(item=item).value == {"labels": ["sport", "politics"]}


def test_instruction_item_prefills_the_response_and_submits_the_edit(client, owner, annotator):
    project = project_create(owner=owner, name="Replies", task_type=TaskType.INSTRUCTION)
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    add_items(project, ["Say hello"], response="Hullo there")
    client.force_login(annotator)
    page = client.get(url("annotate", project.pk)).content.decode()
    assert "Say hello" in page and ">Hullo there</textarea>" in page and "data-ctrl-enter" in page
    item = Claim.objects.get(annotator=annotator).item
    client.post(url("annotate-submit", project.pk, item.pk), {"response": "Hello! How can I help?"}, **HTMX)
    assert Annotation.objects.get(item=item).value == {"response": "Hello! How can I help?"}


def test_the_page_never_shows_another_annotators_value(client, owner, annotator, annotator2):
    """Blind: annotator2's response and note on an item never reach annotator1's page for that item."""
    project = project_create(owner=owner, name="Blind", task_type=TaskType.INSTRUCTION)
    for user in (annotator, annotator2):
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
    add_items(project, ["Prompt shared by both"], response="Original response")
    item = svc.claim_next(annotator=annotator2, project=project).item
    svc.draft_save(annotator=annotator2, item=item, value={"response": "DRAFT-OF-ANNOTATOR-TWO"})
    svc.annotation_submit(
        annotator=annotator2, item=item, value={"response": "SECRET-RESPONSE-TWO"}, label_names=[],
        unsure=True, note="SECRET-NOTE-TWO",
    )
    client.force_login(annotator)
    page = client.get(url("annotate", project.pk)).content.decode()
    assert "Prompt shared by both" in page and ">Original response</textarea>" in page
    for secret in ("SECRET-RESPONSE-TWO", "SECRET-NOTE-TWO", "DRAFT-OF-ANNOTATOR-TWO"):
        assert secret not in page
    progress = client.get(url("annotate-progress", project.pk)).content.decode()
    assert "SECRET" not in progress


def test_deep_link_shows_a_held_item_and_ignores_others(annotating, project, annotator, other_project):
    first = held_item(annotator, project)
    page = annotating.get(url("annotate", project.pk) + f"?item={first.pk}").content.decode()
    assert first.text in page
    foreign = other_project.items.get()
    page = annotating.get(url("annotate", project.pk) + f"?item={foreign.pk}").content.decode()
    assert foreign.text not in page and first.text in page


def test_a_submission_sent_twice_from_the_page_is_stored_once(annotating, project, annotator):
    """A double click, or a browser resending the form after a dropped answer: one annotation, one count."""
    first = held_item(annotator, project)
    for _ in range(2):
        response = annotating.post(url("annotate-submit", project.pk, first.pk), {"label": "negative"}, **HTMX)
        assert response.status_code == 200
    assert Annotation.objects.filter(item=first).count() == 1
    first.refresh_from_db()
    assert first.submitted_count == 1
