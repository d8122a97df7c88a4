"""The review page and queue: the annotate page's keys, item text, reason filters with counts, pages, the
reviewer's progress, and the confirmed bulk accept of agreed audit items."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import (
    Decision,
    DecisionSource,
    Item,
    ItemStatus,
    Label,
    Project,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
    Role,
    TaskType,
)
from annotation.projects.services import HOTKEY_RESERVED, label_create, label_update, membership_set, project_create
from annotation.review import selectors as review_selectors
from annotation.review import services as reviews
from annotation.review.keys import review_keys
from core.errors import ServiceError
from tests.fixtures.people import acknowledge_guidelines, add_items, fixed_routing
from tests.fixtures.reviews import annotate_pair

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def audited(project, annotator, annotator2) -> Project:
    """Every agreed item goes to audit (review_all), so the queue holds audits and disagreements."""
    Project.objects.filter(pk=project.pk).update(review_all=True, audit_rate=0.0)
    project.refresh_from_db()
    acknowledge_guidelines(project, annotator, annotator2)
    return project


def queue_url(project: Project, query: str = "") -> str:
    return reverse("review-queue", args=[project.pk]) + (f"?{query}" if query else "")


def test_review_keys_follow_the_labels_and_step_aside_for_an_old_hotkey():
    keys = review_keys(annotations=2, hotkeys=["1", "2", "3"])
    assert (keys.accept, keys.next, keys.send_back) == (("a", "b"), "n", "s")
    shadowed = review_keys(annotations=3, hotkeys=["A", "n", ""])  # hotkeys given before A, B, N were reserved
    assert (shadowed.accept, shadowed.next) == (("", "b", "c"), "")


def test_labels_may_not_take_the_review_keys_but_keep_one_they_had(project):
    for key in ("a", "B", "n"):
        with pytest.raises(ServiceError) as refused:
            label_create(project=project, name=f"other {key}", hotkey=key)
        assert refused.value.message == HOTKEY_RESERVED
    old = Label.objects.get(project=project, name="neutral")
    Label.objects.filter(pk=old.pk).update(hotkey="a")  # a hotkey from before the rule
    old.refresh_from_db()
    label_update(label=old, name="neutral", color="#123456", hotkey="a")
    assert Label.objects.get(pk=old.pk).color == "#123456"


def test_the_review_page_maps_label_hotkeys_to_the_final_label_and_a_b_to_the_annotators(
    audited, annotator, annotator2, reviewer, client
):
    annotate_pair(audited, annotator, annotator2, "positive", "negative")
    client.force_login(reviewer)
    page = client.get(queue_url(audited)).content.decode()
    for label in Label.objects.filter(project=audited):  # the annotate page's hotkeys, on the final-label form
        assert f'name="label" value="{label.name}" data-hotkey="{label.hotkey}"' in page
    assert 'id="accept-a" data-key="a"' in page and 'id="accept-b" data-key="b"' in page
    assert "<kbd>A</kbd> accept A" in page and "<kbd>B</kbd> accept B" in page
    assert "<kbd>1</kbd> positive" in page and "<kbd>Enter</kbd> save it as final" in page
    assert 'id="review-send-back" data-key="s"' in page
    assert "send back (<kbd>Ctrl</kbd>+<kbd>Enter</kbd> sends the note)" in page  # a tester found it by chance
    # Back to the queue from another page asks the server again: no kept copy shows decided tasks as open
    assert "no-store" in client.get(queue_url(audited))["Cache-Control"]


def test_a_label_hotkey_that_shadows_a_review_key_keeps_its_meaning(audited, annotator, annotator2, reviewer, client):
    Label.objects.filter(project=audited, name="neutral").update(hotkey="a")
    annotate_pair(audited, annotator, annotator2, "positive", "negative")
    client.force_login(reviewer)
    page = client.get(queue_url(audited)).content.decode()
    assert 'data-hotkey="a"' in page and 'data-key="a"' not in page and "accept A</span>" not in page
    assert 'id="accept-b" data-key="b"' in page


def test_fixing_with_a_label_records_a_reviewer_decision(audited, annotator, annotator2, reviewer, client):
    item = annotate_pair(audited, annotator, annotator2, "positive", "negative")
    task = ReviewTask.objects.get(item=item)
    client.force_login(reviewer)
    response = client.post(
        reverse("review-decide", args=[audited.pk, task.pk]) + "?reason=disagreement&page=1",
        {"action": "fix", "label": "neutral"},
        **HTMX,
    )
    assert response.status_code == 200 and "Saved: neutral is the final label." in response.content.decode()
    decision = Decision.objects.get(item=item, source=DecisionSource.REVIEWER)
    assert decision.value == {"label": "neutral"} and decision.reviewer == reviewer


def test_generation_review_keeps_accept_keys_and_a_response_box(owner, annotator, annotator2, reviewer, client):
    project = project_create(owner=owner, name="Chat", task_type=TaskType.INSTRUCTION, guidelines="Be kind.")
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    for user in (annotator, annotator2):
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    add_items(project, ["Say hello."])
    acknowledge_guidelines(project, annotator, annotator2)
    from annotation.annotate import services as ann_svc

    for user, text in ((annotator, "Hello!"), (annotator2, "Hi there.")):
        item = ann_svc.claim_next(annotator=user, project=project).item
        ann_svc.annotation_submit(annotator=user, item=item, value={"response": text}, label_names=[])
    client.force_login(reviewer)
    page = client.get(queue_url(project)).content.decode()
    assert 'id="accept-a" data-key="a"' in page and 'id="accept-b" data-key="b"' in page
    assert 'id="final-response" name="response"' in page and 'data-hotkey' not in page
    assert "<kbd>F</kbd> write the final response" in page


def test_the_queue_shows_text_reasons_counts_and_filters(audited, annotator, annotator2, reviewer, client):
    add_items(audited, ["A long message " + "word " * 40])
    for first, second in (("positive", "negative"), ("neutral", "neutral"), ("negative", "negative")):
        annotate_pair(audited, annotator, annotator2, first, second)
    client.force_login(reviewer)
    page = client.get(queue_url(audited)).content.decode()
    assert "review number 0" in page  # the item's text, not just its id
    assert 'data-reason="audit"' in page and 'data-reason="disagreement"' in page
    assert 'data-reason="audit" title="Audit sample">audit <span class="count">2</span>' in page
    assert 'data-reason="disagreement" title="Annotators disagree">disagreement <span class="count">1</span>' in page
    assert "You reviewed <strong>0</strong> today · <strong>3</strong> open" in page

    bogus = client.get(queue_url(audited, "reason=bogus")).content.decode()
    assert "There is no review reason &#x27;bogus&#x27;: every open task is shown." in bogus
    audits = client.get(queue_url(audited, "reason=audit"), **HTMX).content.decode()
    assert audits.count('class="bulk-pick"') == 2 and "Open <span class=\"muted\">(2 of 3)" in audits
    assert "agreed: neutral" in audits and "agreed: negative" in audits


def test_the_queue_pages_with_a_total(audited, annotator, annotator2, reviewer):
    add_items(audited, [f"more text {i}" for i in range(3)])
    for _ in range(5):
        annotate_pair(audited, annotator, annotator2, "positive", "negative")
    first = review_selectors.review_queue(project=audited, user=reviewer, role=Role.REVIEWER, limit=2)
    last = review_selectors.review_queue(project=audited, user=reviewer, role=Role.REVIEWER, limit=2, page=9)
    assert (first.total, first.pages, len(first.entries), first.first_shown, first.last_shown) == (5, 3, 2, 1, 2)
    assert (last.page, len(last.entries), last.first_shown, last.last_shown) == (3, 1, 5, 5)
    shown = {e.task.pk for page in (1, 2, 3) for e in review_selectors.review_queue(
        project=audited, user=reviewer, role=Role.REVIEWER, limit=2, page=page).entries}
    assert len(shown) == 5


def test_bulk_accept_confirms_then_records_one_decision_per_item(audited, annotator, annotator2, reviewer, client):
    disputed = annotate_pair(audited, annotator, annotator2, "positive", "negative")
    one = annotate_pair(audited, annotator, annotator2, "neutral", "neutral")
    two = annotate_pair(audited, annotator, annotator2, "neutral", "neutral")
    tasks = [ReviewTask.objects.get(item=i).pk for i in (one, two)]
    client.force_login(reviewer)
    url = reverse("review-bulk-accept", args=[audited.pk])

    confirm = client.post(url, {"task": tasks}, **HTMX).content.decode()
    assert "Accept 2 audit items?" in confirm and "<strong>2</strong> items → <strong>neutral</strong>" in confirm
    assert not Decision.objects.filter(source=DecisionSource.REVIEWER).exists()  # nothing before the confirmation

    done = client.post(url, {"task": tasks, "confirm": "1"}, **HTMX).content.decode()
    assert "Accepted 2 audit items." in done
    for item in (one, two):
        decision = Decision.objects.filter(item=item).latest("created_at", "id")
        assert decision.source == DecisionSource.REVIEWER and decision.reviewer == reviewer
        assert decision.value == {"label": "neutral"} and decision.reason == reviews.BULK_REASON
        assert ReviewTask.objects.get(item=item).status == ReviewStatus.DONE
    assert ReviewTask.objects.get(item=disputed).status == ReviewStatus.OPEN
    assert "You reviewed <strong>2</strong> today" in client.get(queue_url(audited)).content.decode()


def test_bulk_accept_refuses_a_disagreement_and_changes_nothing(audited, annotator, annotator2, reviewer, client):
    disputed = annotate_pair(audited, annotator, annotator2, "positive", "negative")
    fine = annotate_pair(audited, annotator, annotator2, "neutral", "neutral")
    tasks = [ReviewTask.objects.get(item=i).pk for i in (disputed, fine)]
    client.force_login(reviewer)
    response = client.post(reverse("review-bulk-accept", args=[audited.pk]), {"task": tasks, "confirm": "1"})
    assert response.status_code == 400
    assert f"item {disputed.pk} (annotators disagree)" in response.content.decode()
    assert not Decision.objects.filter(source=DecisionSource.REVIEWER).exists()
    assert set(ReviewTask.objects.values_list("status", flat=True)) == {ReviewStatus.OPEN}
    # through htmx the form aims at the panel (for its confirm): the refusal's workspace goes where it belongs
    bulk = reverse("review-bulk-accept", args=[audited.pk])
    htmx = client.post(bulk, {"task": tasks}, headers={"HX-Request": "true"})
    assert htmx["HX-Retarget"] == "#review-workspace" and 'class="review-layout"' in htmx.content.decode()


def test_bulk_accept_refuses_an_audit_a_model_also_flagged(audited, annotator, annotator2, reviewer):
    """An audit item a noise scan flagged too is a model-driven review: it is decided on its own."""
    item = annotate_pair(audited, annotator, annotator2, "neutral", "neutral")
    task = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], noise_score=0.1,
                                    suggested_value={"label": "positive"})
    with pytest.raises(ServiceError) as refused:
        reviews.review_bulk_plan(project=audited, user=reviewer, role=Role.REVIEWER, task_ids=[task.pk])
    assert "noise scan suspect" in refused.value.message
    with pytest.raises(ServiceError):
        reviews.review_bulk_plan(project=audited, user=reviewer, role=Role.REVIEWER, task_ids=[])


@fixed_routing  # the owner's word against two agreeing annotators is final only under fixed routing
def test_bulk_accept_leaves_a_task_someone_closed_meanwhile(audited, annotator, annotator2, reviewer, owner):
    items = [annotate_pair(audited, annotator, annotator2, "neutral", "neutral") for _ in range(2)]
    tasks = [ReviewTask.objects.get(item=i) for i in items]
    plan = reviews.review_bulk_plan(project=audited, user=reviewer, role=Role.REVIEWER, task_ids=[t.pk for t in tasks])
    reviews.review_decide(reviewer=owner, task=tasks[0], value={"label": "positive"})
    result = reviews.review_bulk_accept(reviewer=reviewer, plan=plan)
    assert len(result.decisions) == 1 and result.already_closed == [items[0].pk]
    assert Decision.objects.filter(item=items[0]).latest("created_at", "id").value == {"label": "positive"}


@fixed_routing
def test_bulk_accept_of_a_task_closed_before_the_confirmation_accepts_the_rest(
    audited, annotator, annotator2, reviewer, owner, client
):
    """A tester ticked three agreed audits, confirmed, and meanwhile the owner decided one through the API: the
    whole batch was refused as "not agreed audits", naming a task id where the confirmation named items."""
    items = [annotate_pair(audited, annotator, annotator2, "neutral", "neutral") for _ in range(3)]
    tasks = [ReviewTask.objects.get(item=i) for i in items]
    client.force_login(reviewer)
    url = reverse("review-bulk-accept", args=[audited.pk])
    assert "Accept 3 audit items?" in client.post(url, {"task": [t.pk for t in tasks]}, **HTMX).content.decode()
    reviews.review_decide(reviewer=owner, task=tasks[0], value={"label": "positive"})
    confirm = client.post(url, {"task": [t.pk for t in tasks]}, **HTMX).content.decode()
    assert "Accept 2 audit items?" in confirm and f"left as they are: item {items[0].pk}." in confirm
    done = client.post(url, {"task": [t.pk for t in tasks], "confirm": "1"}, **HTMX)
    assert done.status_code == 200
    notice = "Accepted 2 audit items. 1 had been closed meanwhile (decided, sent back or withdrawn)"
    assert notice in done.content.decode()
    assert Decision.objects.filter(item=items[0]).latest("created_at", "id").value == {"label": "positive"}
    assert all(ReviewTask.objects.get(pk=t.pk).status == ReviewStatus.DONE for t in tasks)
    every = client.post(url, {"task": [tasks[0].pk], "confirm": "1"})
    assert every.status_code == 400 and "Every chosen item was closed meanwhile" in every.content.decode()
    stranger = client.post(url, {"task": [999_999], "confirm": "1"})
    assert "task 999999 (not in this project&#x27;s review queue)" in stranger.content.decode()


def test_the_page_says_when_the_weighted_vote_kept_another_label(audited, annotator, annotator2, reviewer, client):
    """Adaptive routing: one reviewer against two agreeing annotators is outvoted; the page said "Fixed." anyway."""
    Project.objects.filter(pk=audited.pk).update(routing_policy="adaptive", routing_budget=2.5)
    item = annotate_pair(audited, annotator, annotator2, "neutral", "neutral")
    task = ReviewTask.objects.get(item=item)
    client.force_login(reviewer)
    decide = reverse("review-decide", args=[audited.pk, task.pk])
    page = client.post(decide, {"action": "fix", "label": "positive"}, **HTMX).content.decode()
    assert "Your label (positive) joined the weighted vote, which keeps neutral as the final label" in page
    assert "Saved:" not in page and 'class="msg warning"' in page and "the project&#x27;s owner can overrule" in page
    assert Decision.objects.filter(item=item).latest("created_at", "id").value == {"label": "neutral"}
    from rest_framework.test import APIClient

    other = annotate_pair(audited, annotator, annotator2, "negative", "negative")
    api = APIClient()
    api.force_authenticate(reviewer)
    task = ReviewTask.objects.get(item=other)
    body = {"action": "fix", "value": {"label": "positive"}}
    answer = api.post(reverse("api-review-task-decide", args=[audited.pk, task.pk]), body, format="json").json()
    assert answer["value"] == {"label": "negative"} and answer["final_source"] == "weighted"


@fixed_routing
def test_a_link_to_a_closed_task_says_so_and_arms_no_other_item(audited, annotator, annotator2, reviewer, client):
    """A tester reopened ?task= of a task they had decided: the page showed the next open item in its place, and
    the keys they pressed decided that one."""
    first = annotate_pair(audited, annotator, annotator2, "positive", "negative")
    annotate_pair(audited, annotator, annotator2, "neutral", "neutral")
    task = ReviewTask.objects.get(item=first)
    reviews.review_decide(reviewer=reviewer, task=task, value={"label": "neutral"})
    client.force_login(reviewer)
    page = client.get(queue_url(audited, f"task={task.pk}")).content.decode()
    assert f"Review task {task.pk} is already closed (decided by you)" in page
    assert 'class="card review-task"' not in page  # no panel: no key decides anything until a task is picked
    unknown = client.get(queue_url(audited, "task=999999")).content.decode()
    assert "There is no review task 999999 in this project." in unknown
    late = client.post(reverse("review-decide", args=[audited.pk, task.pk]), {"action": "fix", "label": "positive"})
    body = late.content.decode()  # one error, not a second one about the link
    assert late.status_code == 400 and "This review task is already closed (decided by you)" in body
    assert "pick another from the list" not in body
    assert 'class="card review-task"' in client.get(queue_url(audited)).content.decode()
    # under a filter that has run empty while other tasks wait, the way on is the whole queue
    emptied = client.get(queue_url(audited, f"reason=disagreement&task={task.pk}")).content.decode()
    assert "Show all open tasks" in emptied and 'data-key="n"' in emptied


def test_the_items_text_is_cut_to_an_excerpt():
    assert review_selectors.excerpt("short  text\n here") == "short text here"
    long = review_selectors.excerpt("word " * 60)
    assert long.endswith("…") and len(long) <= review_selectors.EXCERPT_CHARS


def test_an_annotator_reviewer_never_sees_tasks_of_items_they_could_still_annotate(audited, annotator, annotator2):
    item = Item.objects.filter(project=audited).first()
    reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE])
    queue = review_selectors.review_queue(project=audited, user=annotator, role=Role.ANNOTATOR)
    assert queue.open_count == 0 and queue.reason_counts == [] and queue.panel is None


def test_the_api_bulk_accepts_agreed_audits_and_refuses_the_rest(audited, annotator, annotator2, reviewer):
    from rest_framework.test import APIClient

    disputed = annotate_pair(audited, annotator, annotator2, "positive", "negative")
    agreed = annotate_pair(audited, annotator, annotator2, "neutral", "neutral")
    api = APIClient()
    api.force_authenticate(reviewer)
    url = reverse("api-review-task-bulk-accept", args=[audited.pk])
    bad = [ReviewTask.objects.get(item=i).pk for i in (disputed, agreed)]
    refused = api.post(url, {"task_ids": bad}, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "tasks"
    assert not Decision.objects.filter(source=DecisionSource.REVIEWER).exists()
    task = ReviewTask.objects.get(item=agreed)
    done = api.post(url, {"task_ids": [task.pk]}, format="json").json()
    [row] = done["accepted"]
    assert (row["task_id"], row["item_id"], row["value"]) == (task.pk, agreed.pk, {"label": "neutral"})
    assert done["already_closed"] == []
    repeated = api.post(url, {"task_ids": [task.pk]}, format="json")  # nothing left to accept: the state changed
    assert repeated.status_code == 409 and "closed meanwhile" in repeated.json()["detail"]
    listed = api.get(reverse("api-review-task-list", args=[audited.pk]), {"status": "open"}).json()
    assert listed["count"] == 1 and listed["results"][0]["item_id"] == disputed.pk


def test_the_owner_overrules_a_final_label_the_weighted_vote_keeps(
    audited, annotator, annotator2, reviewer, owner, client
):
    """A tester's cold, soggy pizza: two annotators said positive, the reviewer negative, twice (on a noise flag too),
    and the weighted vote kept positive every time. The owner's word is final, with a reason the history keeps."""
    Project.objects.filter(pk=audited.pk).update(routing_policy="adaptive", routing_budget=2.5)
    item = annotate_pair(audited, annotator, annotator2, "positive", "positive")
    reviews.review_decide(reviewer=reviewer, task=ReviewTask.objects.get(item=item), value={"label": "negative"})
    assert Decision.objects.filter(item=item).latest("created_at", "id").value == {"label": "positive"}
    history = reverse("item-history", args=[audited.pk, item.pk])
    overrule = reverse("item-overrule", args=[audited.pk, item.pk])
    client.force_login(reviewer)
    assert 'id="overrule"' not in client.get(history).content.decode()  # the owner's, not a reviewer's
    assert client.post(overrule, {"label": "negative", "reason": "cold pizza"}).status_code == 403
    client.force_login(owner)
    assert 'id="overrule"' in client.get(history).content.decode()
    refused = client.post(overrule, {"label": "negative", "reason": "  "})
    assert refused.status_code == 400 and "Say why you overrule the final label" in refused.content.decode()
    assert client.post(overrule, {"label": "positive", "reason": "x"}).status_code == 400  # already final
    assert client.post(overrule, {"label": "bogus", "reason": "x"}).status_code == 400
    assert Decision.objects.filter(item=item).count() == 2  # the reviewer's and the weighted vote; the refusals none
    kept = client.post(overrule, {"label": "negative", "reason": ""}).content.decode()
    assert 'value="negative" checked' in kept  # the form keeps what was chosen
    done = client.post(overrule, {"label": "negative", "reason": "cold and soggy is negative"}, follow=True)
    final = Decision.objects.filter(item=item).latest("created_at", "id")
    assert final.value == {"label": "negative"} and final.reviewer == owner and final.source == DecisionSource.OWNER
    assert final.reason == "cold and soggy is negative"
    page = done.content.decode()
    assert "negative is now its final label" in page and "cold and soggy is negative" in page
    pending = annotate_pair(audited, annotator, annotator2, "positive", "negative")  # in review, not decided
    answer = client.post(reverse("item-overrule", args=[audited.pk, pending.pk]), {"label": "negative", "reason": "x"})
    assert answer.status_code == 400 and "has no final label yet" in answer.content.decode()


def test_the_overrule_api_is_the_owners_and_needs_a_reason(audited, annotator, annotator2, reviewer, owner):
    from rest_framework.test import APIClient

    item = annotate_pair(audited, annotator, annotator2, "positive", "positive")
    reviews.review_decide(reviewer=reviewer, task=ReviewTask.objects.get(item=item), value={"label": "positive"})
    assert Item.objects.get(pk=item.pk).status == ItemStatus.APPROVED
    url = reverse("api-item-overrule", args=[audited.pk, item.pk])
    api = APIClient()
    api.force_authenticate(reviewer)
    assert api.post(url, {"value": {"label": "negative"}, "reason": "x"}, format="json").status_code == 403
    api.force_authenticate(owner)
    refused = api.post(url, {"value": {"label": "negative"}, "reason": ""}, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "reason"
    done = api.post(url, {"value": {"label": "negative"}, "reason": "sarcasm"}, format="json")
    assert done.status_code == 200 and done.json()["value"] == {"label": "negative"}
    assert done.json()["reason"] == "sarcasm"
    assert Decision.objects.filter(item=item).latest("created_at", "id").value == {"label": "negative"}


def test_an_overruled_item_stays_overruled_on_a_later_review(audited, annotator, annotator2, reviewer, owner):
    """A later review of an item the owner overruled is the reviewer's word, not a vote two annotators can win."""
    Project.objects.filter(pk=audited.pk).update(routing_policy="adaptive", routing_budget=2.5)
    item = annotate_pair(audited, annotator, annotator2, "positive", "positive")
    reviews.review_decide(reviewer=reviewer, task=ReviewTask.objects.get(item=item), value={"label": "positive"})
    reviews.item_overrule(owner=owner, item=Item.objects.get(pk=item.pk), value={"label": "negative"}, reason="x")
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.IN_REVIEW)
    task = reviews.review_task_open(item=item, reasons=[ReviewReason.NOISE], suggested_value={"label": "positive"})
    panel = review_selectors.review_panel(task=task, project=Project.objects.get(pk=audited.pk))
    assert panel.routing_note == review_selectors.ADAPTIVE_OVERRULED  # not "your label joins the vote"
    decision = reviews.review_decide(reviewer=reviewer, task=task, value={"label": "negative"})
    assert decision.source == DecisionSource.REVIEWER and decision.value == {"label": "negative"}


def test_an_overrule_refuses_an_item_sent_to_review_meanwhile_and_asks_before_a_test_label(
    audited, annotator, annotator2, reviewer, owner
):
    from annotation.models import ItemSplit, Split

    item = annotate_pair(audited, annotator, annotator2, "positive", "negative")
    reviews.review_decide(reviewer=reviewer, task=ReviewTask.objects.get(item=item), value={"label": "positive"})
    stale = Item.objects.get(pk=item.pk)  # the page loaded it approved; a noise flag then sends it to review
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.IN_REVIEW)
    with pytest.raises(ServiceError, match="has no final label yet"):
        reviews.item_overrule(owner=owner, item=stale, value={"label": "negative"}, reason="x")
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.APPROVED)
    ItemSplit.objects.create(item=item, split=Split.TEST)
    with pytest.raises(ServiceError, match="test split") as refused:
        reviews.item_overrule(owner=owner, item=stale, value={"label": "negative"}, reason="x")
    assert refused.value.field == "confirm_test_split"
    assert Decision.objects.filter(item=item).latest("created_at", "id").value == {"label": "positive"}
    done = reviews.item_overrule(
        owner=owner, item=stale, value={"label": "negative"}, reason="x", confirm_test_split=True
    )
    assert done.value == {"label": "negative"}
