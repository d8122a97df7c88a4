"""Spans in a real browser, by keyboard and mouse: two annotators mark people and places (an emoji and a
combining accent before them: offsets are code points, counted by the server, not by JavaScript's UTF-16),
an overlap is refused, Ctrl+Z undoes, autosave keeps a draft; the reviewer sees both side by side and
accepts one by its key; the owner snapshots the spans."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Annotation, Decision, Draft, Item, ReviewTask, Snapshot, SnapshotItem
from tests.browser.test_annotate_browser import log_in, wait_until
from tests.fixtures.people import make_user
from tests.fixtures.spans import SPAN_TEXTS, span, span_project

pytestmark = pytest.mark.browser

ADA, EMOJI = SPAN_TEXTS[0], SPAN_TEXTS[1]


@pytest.fixture
def people(transactional_db):
    owner, a1, a2, reviewer = (make_user(n) for n in ("owner", "annotator1", "annotator2", "reviewer"))
    project = span_project(owner, [a1, a2], reviewer)
    project.audit_rate = 0
    project.save(update_fields=["audit_rate"])
    return project, a1, a2


def text_of(page: Page) -> str:
    return page.locator("#span-text").inner_text()


def submit(page: Page) -> None:
    """Enter submits; wait until the next item (or the done panel) has replaced this one."""
    shown = page.locator("#workspace").get_attribute("data-item")
    page.keyboard.press("Enter")
    expect(page.locator("#workspace")).not_to_have_attribute("data-item", shown or "")


def mark_current(page: Page, marks: dict[str, list[tuple[int, int, str]]]) -> None:
    """Mark the item on screen: (first word, number of further words, label key) from its first word."""
    text = text_of(page)
    plan = next(v for k, v in marks.items() if text.startswith(k))
    for word, extra, key in plan:
        page.keyboard.press("Home")
        for _ in range(word):
            page.keyboard.press("ArrowRight")
        for _ in range(extra):
            page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press(key)


def test_mark_review_and_snapshot_spans(page: Page, people, screenshot_dir):
    project, a1, _ = people
    log_in(page, "annotator1", f"/projects/{project.pk}/annotate/")
    seen = set()
    while len(seen) < 3:
        expect(page.locator("#span-text[data-ready]")).to_be_visible()  # its keys are live
        text = text_of(page)
        seen.add(text)
        if text.startswith("Ada"):
            # Keyboard: "Ada Lovelace" (words 0-1) as PER, then London (word 6) as LOC.
            mark_current(page, {"Ada": [(0, 1, "1"), (6, 0, "2")]})
            expect(page.locator("#span-list li")).to_have_count(2)
            # An overlapping span is refused, with the reason.
            page.keyboard.press("Home")
            page.keyboard.press("2")
            expect(page.locator("#span-message")).to_contain_text("Refused: it overlaps the PER span")
            # Ctrl+Z takes back London; the mouse marks it again.
            page.keyboard.press("Control+z")
            expect(page.locator("#span-list li")).to_have_count(1)
            page.locator("#span-text .seg", has_text="London").dblclick()
            page.keyboard.press("2")
            expect(page.locator("#span-list li")).to_have_count(2)
            item = Item.objects.get(project=project, text=ADA)
            draft = wait_until(lambda item=item: Draft.objects.filter(item=item, annotator=a1).first())
            assert len(draft.value["spans"]) >= 1
            page.screenshot(path=str(screenshot_dir / "spans-annotate.png"), full_page=True)
        elif text.startswith("😀"):
            # After the emoji (two UTF-16 units, one code point): Zoé (word 1) and Paris (word 4).
            mark_current(page, {"😀": [(1, 0, "1"), (4, 0, "2")]})
            expect(page.locator("#span-list")).to_contain_text("“Zoe\u0301”")
        submit(page)

    stored = {a.item.text: a.value for a in Annotation.objects.filter(annotator=a1).select_related("item")}
    assert stored[ADA] == {"spans": [span(ADA, "Ada Lovelace", "PER"), span(ADA, "London", "LOC")]}
    assert stored[EMOJI] == {"spans": [span(EMOJI, "Zoe\u0301", "PER"), span(EMOJI, "Paris", "LOC")]}
    assert stored[EMOJI]["spans"][0] == {"start": 2, "end": 6, "label": "PER"}
    assert stored[SPAN_TEXTS[2]] == {"spans": []}

    # The second annotator, blind, marks only "Ada" on the first text and agrees elsewhere.
    page.context.clear_cookies()
    log_in(page, "annotator2", f"/projects/{project.pk}/annotate/")
    for _ in range(3):
        expect(page.locator("#span-text[data-ready]")).to_be_visible()  # its keys are live
        text = text_of(page)
        if text.startswith("Ada"):
            mark_current(page, {"Ada": [(0, 0, "1"), (6, 0, "2")]})
        elif text.startswith("😀"):
            mark_current(page, {"😀": [(1, 0, "1"), (4, 0, "2")]})
        submit(page)

    # The reviewer sees both answers side by side, the disputed word underlined, and accepts A.
    task = ReviewTask.objects.get(item__text=ADA)
    page.context.clear_cookies()
    log_in(page, "reviewer", f"/projects/{project.pk}/review/?task={task.pk}")
    expect(page.locator("#span-sides .span-side")).to_have_count(2)
    expect(page.locator("#span-sides .seg.disagree").first).to_have_text("Lovelace")
    page.screenshot(path=str(screenshot_dir / "spans-review.png"), full_page=True)
    page.locator("#accept-a").click()
    accepted = wait_until(lambda: Decision.objects.filter(item__text=ADA).first())
    assert accepted.value in (stored[ADA], {"spans": [span(ADA, "Ada", "PER"), span(ADA, "London", "LOC")]})

    # The owner freezes the approved items; the snapshot rows hold the spans.
    page.context.clear_cookies()
    log_in(page, "owner", f"/projects/{project.pk}/snapshots/")
    page.locator("#snapshot-create input[name=name]").fill("spans v1")
    page.get_by_role("button", name="Create snapshot").click()
    page.locator("#confirm-create-snapshot").click()
    expect(page.locator("#span-exports")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "spans-snapshot.png"), full_page=True)
    snapshot = Snapshot.objects.get(project=project)
    rows = {row.item.text: row.value for row in SnapshotItem.objects.filter(snapshot=snapshot).select_related("item")}
    assert rows[EMOJI] == stored[EMOJI] and rows[ADA] == accepted.value

    # The quality page: span agreement per label, and noise scans said plainly not offered.
    page.goto(f"/projects/{project.pk}/quality/")
    expect(page.locator("#span-agreement-table")).to_contain_text("Token-level F1")
    expect(page.locator("#scan-blocker")).to_contain_text("not offered for span projects")
    page.screenshot(path=str(screenshot_dir / "spans-quality.png"), full_page=True)
