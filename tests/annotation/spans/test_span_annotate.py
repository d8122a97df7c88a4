"""Annotating spans through the annotate page and API: offsets stored against the exact text, blind double
annotation, autosave and undo as for labels, refusals that change nothing."""

from __future__ import annotations

import json

import pytest

from annotation.annotate import services as svc
from annotation.models import Annotation, Claim, ClaimStatus, Draft, Item, ItemStatus
from annotation.tasktypes import SPANS_OVERLAP
from tests.fixtures.pages import HTMX, held_item, url
from tests.fixtures.spans import span, span_project


@pytest.fixture
def spans_project(owner, annotator, annotator2, reviewer):
    return span_project(owner, [annotator, annotator2], reviewer)


def _login(client, user):
    client.force_login(user)
    return client


def test_the_page_cuts_the_text_into_code_point_pieces(client, spans_project, annotator):
    page = _login(client, annotator).get(url("annotate", spans_project.pk)).content.decode()
    item = held_item(annotator, spans_project)
    assert 'id="span-text"' in page and "js/spans.js" in page and 'name="spans"' in page
    assert 'data-span-label="PER" data-span-key="1"' in page
    for start, piece in ((0, item.text.split()[0]),):
        assert f'data-s="{start}" data-e="{start + len(piece)}">{piece}</span>' in page


def test_submit_stores_sorted_spans_and_the_next_item_comes(client, spans_project, annotator):
    client = _login(client, annotator)
    item = held_item(annotator, spans_project)
    spans = [span(item.text, item.text.split()[-1].rstrip("."), "LOC"), span(item.text, item.text.split()[0], "PER")]
    response = client.post(url("annotate-submit", spans_project.pk, item.pk), {"spans": json.dumps(spans)}, **HTMX)
    assert response.status_code == 200 and f"Saved item #{item.pk}" in response.content.decode()
    stored = Annotation.objects.get(item=item, annotator=annotator).value
    assert stored == {"spans": sorted(spans, key=lambda s: s["start"])}


def test_an_overlap_is_refused_and_the_item_stays_with_what_was_marked(client, spans_project, annotator):
    client = _login(client, annotator)
    item = held_item(annotator, spans_project)
    spans = [{"start": 0, "end": 5, "label": "PER"}, {"start": 2, "end": 6, "label": "LOC"}]
    response = client.post(url("annotate-submit", spans_project.pk, item.pk), {"spans": json.dumps(spans)}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and SPANS_OVERLAP.split("{")[0] in html
    assert not Annotation.objects.filter(item=item).exists()
    assert f'data-item="{item.pk}"' in html and "&quot;start&quot;: 2" in html  # kept on screen


def test_autosave_keeps_spans_and_undo_brings_them_back(client, spans_project, annotator):
    client = _login(client, annotator)
    item = held_item(annotator, spans_project)
    spans = [span(item.text, item.text.split()[0], "PER")]
    client.post(url("annotate-draft", spans_project.pk, item.pk), {"spans": json.dumps(spans)}, **HTMX)
    assert Draft.objects.get(item=item, annotator=annotator).value == {"spans": spans}
    page = client.get(url("annotate", spans_project.pk) + f"?item={item.pk}").content.decode()
    assert "Draft restored" in page and "&quot;label&quot;: &quot;PER&quot;" in page
    client.post(url("annotate-submit", spans_project.pk, item.pk), {"spans": json.dumps(spans)}, **HTMX)
    response = client.post(url("annotate-undo", spans_project.pk), **HTMX)
    assert f"Item #{item.pk} is back" in response.content.decode()
    assert "&quot;label&quot;: &quot;PER&quot;" in response.content.decode()


def test_two_annotators_blind_then_the_item_is_annotated(spans_project, annotator, annotator2):
    for user, label in ((annotator, "PER"), (annotator2, "LOC")):
        claim = None
        while True:
            claim = svc.claim_next(annotator=user, project=spans_project).claim
            if claim.item.text.startswith("Ada"):
                break
            svc.claim_skip(annotator=user, item=claim.item, reason="later")
        item = claim.item
        svc.annotation_submit(
            annotator=user,
            item=item,
            value={"spans": [{"start": 0, "end": 3, "label": label}]},
            label_names=["PER", "LOC"],
        )
    item = Item.objects.get(pk=item.pk)
    assert item.submitted_count == 2 and item.status == ItemStatus.IN_REVIEW  # they disagree: review
    assert Claim.objects.filter(item=item, status=ClaimStatus.SUBMITTED).count() == 2


def test_the_api_takes_spans_and_names_a_bad_one(spans_project, annotator):
    from tests.fixtures.api import api_as, next_item, submit

    client = api_as(annotator)
    while True:
        shown = next_item(client, spans_project)
        item_id, text = shown["item_id"], shown["text"]
        if text.startswith("😀"):
            break
        client.post(url("api-item-skip", spans_project.pk, item_id), {"reason": "later"}, format="json")
    bad = submit(client, spans_project, item_id, {"spans": [{"start": 0, "end": 3, "label": "PER", "text": "Zoé"}]})
    assert bad.status_code == 400 and bad.json()["field"] == "spans"
    good = [span(text, "Zoe\u0301", "PER"), span(text, "Marie Curie", "PER")]
    response = submit(client, spans_project, item_id, {"spans": good})
    assert response.status_code in (200, 201), response.content
    assert Annotation.objects.get(item_id=item_id, annotator=annotator).value == {"spans": good}
