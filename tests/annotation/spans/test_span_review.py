"""Reviewing span disagreements: both answers side by side with the words they disagree on marked, accept A
or B, or fix the spans in an editor; the decision is checked against the text like any span value."""

from __future__ import annotations

import json

import pytest

from annotation.models import Decision, ReviewTask
from annotation.tasktypes import SPAN_OUT_OF_TEXT, span_sides
from tests.fixtures.pages import HTMX, url
from tests.fixtures.span_loop import annotate_all
from tests.fixtures.spans import SPAN_TEXTS, item_with, span, span_project

ADA = SPAN_TEXTS[0]


@pytest.fixture
def disputed(owner, annotator, annotator2, reviewer):
    project = span_project(owner, [annotator, annotator2], reviewer)
    project.audit_rate = 0
    project.save(update_fields=["audit_rate"])
    annotate_all(project, annotator, {"Ada": [("Ada Lovelace", "PER"), ("London", "LOC")]})
    annotate_all(project, annotator2, {"Ada": [("Ada", "PER"), ("London", "LOC")]})
    return project


def test_sides_mark_the_words_the_answers_disagree_on():
    a = {"spans": [span(ADA, "Ada Lovelace", "PER"), span(ADA, "London", "LOC")]}
    b = {"spans": [span(ADA, "Ada", "PER"), span(ADA, "London", "LOC")]}
    side_a, side_b = span_sides(ADA, [a, b])
    assert [piece for _, _, _, piece, diff in side_a if diff] == ["Lovelace"]
    assert [s[:4] for s in side_a] == [s[:4] for s in side_b]  # the same pieces on both sides


def test_the_review_page_shows_both_sides_and_an_editor(client, disputed, reviewer):
    task = ReviewTask.objects.get(item=item_with(disputed, "Ada"))
    client.force_login(reviewer)
    page = client.get(url("review-queue", disputed.pk) + f"?task={task.pk}").content.decode()
    assert 'id="span-sides"' in page and page.count('data-readonly') == 2
    assert '<span class="seg disagree" data-s="4" data-e="12">Lovelace</span>' in page
    assert 'id="span-text"' in page and 'name="spans"' in page and "js/spans.js" in page
    assert "Accept A" in page and "PER 0-12, LOC 36-42" in page


def test_accept_b_and_fix_with_an_edited_value(client, disputed, reviewer):
    item = item_with(disputed, "Ada")
    task = ReviewTask.objects.get(item=item)
    client.force_login(reviewer)
    decide = url("review-decide", disputed.pk, task.pk)
    bad = client.post(decide, {"action": "fix", "spans": json.dumps([{"start": 0, "end": 99, "label": "PER"}])}, **HTMX)
    assert SPAN_OUT_OF_TEXT.split("{")[0] in bad.content.decode() and not Decision.objects.filter(item=item).exists()
    fixed = [span(ADA, "Ada Lovelace", "PER"), span(ADA, "Charles Babbage", "PER"), span(ADA, "London", "LOC")]
    client.post(decide, {"action": "fix", "spans": json.dumps(fixed)}, **HTMX)
    assert Decision.objects.get(item=item).value == {"spans": fixed}


def test_accept_an_answer(client, disputed, reviewer, annotator2):
    item = item_with(disputed, "Ada")
    task = ReviewTask.objects.get(item=item)
    b = item.annotations.get(annotator=annotator2)
    client.force_login(reviewer)
    client.post(url("review-decide", disputed.pk, task.pk), {"action": "accept", "annotation": b.pk}, **HTMX)
    assert Decision.objects.get(item=item).value == b.value
