"""The whole loop in a real browser, on a tiny model: import → two annotators → review → snapshot → train →
rate and correct → the next round's queue puts the uncertain items first → the second snapshot holds the
correction.

Every step a person takes happens in the page, by keyboard where the page is keyboard-first. The only
thing done outside the browser is what a real deployment's RQ worker does: the test drains the queues in
its own thread (RQ's SimpleWorker, burst mode) on the embedded Redis.
"""

from __future__ import annotations

import json

import django_rq
import pytest
from playwright.sync_api import Page, expect

from annotation.models import Decision, DecisionSource, Item, Project, Role, Snapshot, SnapshotItem
from annotation.projects.services import membership_set, project_create
from core.queues import JsonSimpleWorker
from tests.fixtures.people import make_user
from tests.fixtures.runs import TINY_BERT_SPEC
from tests.fixtures.tiny_models import sentiment_rows
from training.models import ModelOutput, Rating, Round, RunStatus, TrainingRun

pytestmark = pytest.mark.browser

LABELLED = 20  # items both annotators label in round 1
POOL = 10  # items left unlabelled for the model to rank


def log_in(page: Page, username: str, next_url: str) -> None:
    page.context.clear_cookies()
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")


def drain() -> None:
    """What the deployment's RQ workers do: run every queued job (imports, training, predictions)."""
    for name in ("imports", "training", "default"):
        django_rq.get_worker(name, worker_class=JsonSimpleWorker).work(burst=True)


@pytest.fixture
def loop_project(transactional_db, tiny_models, queues):
    owner = make_user("owner")
    project = project_create(
        owner=owner, name="Reviews", labels=["pos", "neg"], overlap=2, guidelines="Pick the writer's feeling."
    )
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0, queue_order="entropy", random_share=0.0)
    for name, role in (("ann1", Role.ANNOTATOR), ("ann2", Role.ANNOTATOR), ("rev", Role.REVIEWER)):
        membership_set(project=project, user=make_user(name), role=role)
    project.refresh_from_db()
    return project


def annotate(page: Page, project: Project, username: str, truth: dict[str, str], wrong_on: str = "") -> None:
    """Label LABELLED items by keyboard: 1 = pos, 2 = neg; `wrong_on` gets the other label."""
    log_in(page, username, f"/projects/{project.pk}/annotate/")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # acknowledge the guidelines (the button has the focus)
    for n in range(1, LABELLED + 1):
        text = page.locator("#item-text").inner_text()
        label = truth[text]
        if text == wrong_on:
            label = "neg" if label == "pos" else "pos"
        page.keyboard.press("1" if label == "pos" else "2")
        page.keyboard.press("Enter")
        expect(page.locator("#my-submitted")).to_have_text(str(n))


def test_the_whole_loop(page: Page, loop_project, settings, screenshot_dir):
    project = loop_project
    rows = sentiment_rows(LABELLED + POOL, seed=11)
    rows = [{**row, "text": f"{row['text']} #{i}"} for i, row in enumerate(rows)]
    truth = {row["text"]: row["label"] for row in rows}

    # 1. The owner imports the data (no labels: people give them).
    log_in(page, "owner", f"/projects/{project.pk}/import/")
    data = "".join(json.dumps({"text": row["text"], "id": f"r{i}"}) + "\n" for i, row in enumerate(rows)).encode()
    page.set_input_files(
        "#id_file", files=[{"name": "reviews.jsonl", "mimeType": "application/x-ndjson", "buffer": data}]
    )
    page.get_by_role("button", name="Upload and import").click()
    drain()
    expect(page.locator("#import-status")).to_contain_text(f"Imported {len(rows)} items.")

    # 2. Two annotators label blind; they disagree on one item.
    disputed = rows[3]["text"]
    annotate(page, project, "ann1", truth)
    annotate(page, project, "ann2", truth, wrong_on=disputed)

    # 3. The reviewer settles the disagreement by keyboard: accept the first annotator's label.
    log_in(page, "rev", f"/projects/{project.pk}/review/")
    panel = page.locator("#review-panel")
    expect(panel).to_contain_text("Annotators disagree")
    expect(page.locator("#review-item-text, #review-panel")).to_contain_text(disputed)
    page.keyboard.press("a")  # A accepts annotator A's answer (label hotkeys pick the final label instead)
    page.wait_for_selector("#review-empty")
    assert Decision.objects.filter(item__text=disputed, source=DecisionSource.REVIEWER).get().value == {
        "label": truth[disputed]
    }
    assert Item.objects.filter(project=project, status="approved").count() == LABELLED

    # 4. The owner freezes the approved items into a snapshot.
    log_in(page, "owner", f"/projects/{project.pk}/snapshots/")
    page.locator("#snapshot-create input[name=name]").fill("round 1")
    page.get_by_role("button", name="Create snapshot").click()
    page.locator("#confirm-create-snapshot").click()
    first = Snapshot.objects.get(project=project)
    assert SnapshotItem.objects.filter(snapshot=first).count() == LABELLED

    # 5. ...and trains the tiny model on it, watching the page bring the result.
    page.goto(f"/projects/{project.pk}/snapshots/{first.pk}/train/")
    page.select_option("#id_base_model", "tiny-bert")
    for field, value in TINY_BERT_SPEC.items():
        if field != "base_model" and page.locator(f"#id_{field}").count():
            page.fill(f"#id_{field}", str(value))
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/runs/*/")
    drain()  # trains, then predicts the test split and the unlabelled pool
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=20_000)
    expect(page.locator("#run-evaluation")).to_contain_text("Macro-F1")
    run = TrainingRun.objects.get(project=project)
    assert run.status == RunStatus.SUCCEEDED
    pool = Item.objects.filter(project=project).exclude(status="approved")
    assert ModelOutput.objects.filter(run=run, item__in=pool).count() == POOL

    _rate_and_go_round_again(page, project, run, first, truth, screenshot_dir)


def _rate_and_go_round_again(page, project, run, first, truth, screenshot_dir) -> None:
    # 6. The reviewer rates the model's outputs by keyboard: an output on an unlabelled item is wrong, so they
    # give the right label (W, digit, Enter); the next one shown is marked correct (C, Enter). (The rating queue
    # starts with the test split, whose labels no rating ever changes: the correction is made on a pool item.)
    pool_output = ModelOutput.objects.filter(run=run).exclude(item__status="approved").order_by("item_id").first()
    log_in(page, "rev", f"/projects/{project.pk}/ratings/runs/{run.pk}/?output={pool_output.pk}")
    workspace = page.locator("#rating-workspace")
    shown = page.locator("#item-text").inner_text()
    corrected = Item.objects.get(project=project, text=shown.strip())
    model_said = ModelOutput.objects.get(run=run, item=corrected).value["label"]
    right = "neg" if model_said == "pos" else "pos"  # the rater says otherwise: a correction to keep
    page.keyboard.press("w")
    page.keyboard.press("1" if right == "pos" else "2")
    page.keyboard.press("Enter")
    expect(workspace).not_to_contain_text(shown.strip())
    second_shown = page.locator("#item-text").inner_text()
    page.keyboard.press("c")
    page.keyboard.press("Enter")
    expect(workspace).not_to_contain_text(second_shown.strip())
    rating = Rating.objects.filter(item=corrected).get()
    assert rating.verdict == "wrong" and rating.correction == {"label": right}
    assert Rating.objects.filter(run=run).count() == 2

    # 7. The owner reads the plan for the next round, then starts it.
    log_in(page, "owner", f"/projects/{project.pk}/rounds/plan/")
    expect(page.locator("#plan-queue")).not_to_have_text("0")
    corrections = int(page.locator("#plan-corrections").inner_text())
    assert corrections >= 1
    page.screenshot(path=str(screenshot_dir / "loop_plan.png"), full_page=True)
    page.locator("#start-round").click()
    page.locator("#confirm-start-round").click()
    page.wait_for_url(f"**/projects/{project.pk}/rounds/")
    assert Round.objects.filter(project=project).count() == 2
    decision = Decision.objects.filter(item=corrected).latest("created_at", "id")
    assert decision.value == {"label": right} and decision.source == DecisionSource.MODEL_CORRECTED

    # 8. Round 2 for an annotator who joins now (the others still hold the item they had open when round 1
    # ended: a claim is never taken away): the most uncertain unlabelled item comes first.
    membership_set(project=project, user=make_user("ann3"), role=Role.ANNOTATOR)
    open_items = Item.objects.filter(project=project, is_open=True)
    uncertainty = dict(ModelOutput.objects.filter(run=run, item__in=open_items).values_list("item_id", "uncertainty"))
    most_uncertain = max(uncertainty, key=lambda item_id: (uncertainty[item_id], -item_id))
    log_in(page, "ann3", f"/projects/{project.pk}/annotate/")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # acknowledge the guidelines
    expect(page.locator("#item-text")).to_have_text(Item.objects.get(pk=most_uncertain).text)

    # 9. The second snapshot holds the correction, with its provenance.
    log_in(page, "owner", f"/projects/{project.pk}/snapshots/")
    page.locator("#snapshot-create input[name=name]").fill("round 2")
    page.get_by_role("button", name="Create snapshot").click()
    page.locator("#confirm-create-snapshot").click()
    second = Snapshot.objects.filter(project=project).latest("id")
    assert second.pk != first.pk
    row = SnapshotItem.objects.get(snapshot=second, item=corrected)
    assert row.value == {"label": right} and "model_corrected" in json.dumps(row.provenance)
    assert SnapshotItem.objects.filter(snapshot=second).count() == SnapshotItem.objects.filter(
        snapshot=first
    ).count() + (0 if SnapshotItem.objects.filter(snapshot=first, item=corrected).exists() else 1)
    page.goto(f"/projects/{project.pk}/rounds/")
    page.screenshot(path=str(screenshot_dir / "loop_rounds.png"), full_page=True)
