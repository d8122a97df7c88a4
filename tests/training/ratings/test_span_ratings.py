"""Rating span outputs: correct / wrong with the right spans, validated exactly as an annotation is (offsets in code
points against the exact text, quoted text, labels, the overlap rule), through the service, the page and the API;
annotators refused; the export quotes each span's text; corrections feed the next round, never a test label."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Decision, DecisionSource, Item, ItemStatus
from annotation.tasktypes import (
    SPAN_OUT_OF_TEXT,
    SPAN_TEXT_MISMATCH,
    SPAN_UNKNOWN_LABEL,
    SPANS_OVERLAP,
    value_display,
)
from core.errors import ServiceError
from tests.fixtures.api import api_as
from tests.fixtures.ratings import RatingWorld, span_world
from training.models import Rating, RoundChange
from training.ratings.selectors import rateable_runs, ratings_export_rows
from training.ratings.services import (
    CORRECT_TAKES_NO_CORRECTION,
    SAME_AS_MODEL,
    WRONG_NEEDS_SPANS,
    rating_submit,
)
from training.rounds.options import plan_options_parse
from training.rounds.selectors import round_figures, round_plan
from training.rounds.services import round_advance

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world(users_by_role) -> RatingWorld:
    return span_world(users_by_role)


def at(text: str, piece: str, label: str) -> dict:
    start = text.index(piece)
    return {"start": start, "end": start + len(piece), "label": label}


def rate(world: RatingWorld, index: int, **fields) -> Rating:
    return rating_submit(rater=world.users["reviewer"], output=world.outputs[index], project=world.project, **fields)


def fixed_alan(world: RatingWorld) -> dict:
    text = world.outputs[2].item.text
    return {"spans": [at(text, "Alan Turing", "PER"), at(text, "Manchester", "LOC")]}


# --- The service ---------------------------------------------------------------------------------


def test_span_runs_are_rateable_correct_or_wrong_with_the_right_spans(world):
    assert [run.pk for run in rateable_runs(project=world.project, rater=world.users["reviewer"])] == [world.run.pk]
    right = rate(world, 1, verdict="correct")
    assert right.verdict == "correct" and right.correction is None
    text = world.outputs[2].item.text
    # Spans arrive in any order and may quote their text: the stored correction is canonical.
    posted = {"spans": [{**at(text, "Manchester", "LOC"), "text": "Manchester"}, at(text, "Alan Turing", "PER")]}
    wrong = rate(world, 2, verdict="wrong", correction=posted)
    assert wrong.verdict == "wrong" and wrong.correction == fixed_alan(world)
    # The model found spans in a text that has none: an empty list is a valid answer.
    empty = rate(world, 2, verdict="wrong", correction={"spans": []})
    assert empty.correction == {"spans": []}


ALAN = "Alan Turing visited Manchester 😀 twice."


@pytest.mark.parametrize(
    ("correction", "message"),
    [
        (None, WRONG_NEEDS_SPANS),
        ({"label": "PER"}, WRONG_NEEDS_SPANS),
        ({"spans": [{"start": 0, "end": 400, "label": "PER"}]},
         SPAN_OUT_OF_TEXT.format(n=1, start=0, end=400, length=len(ALAN))),
        ({"spans": [{"start": 0, "end": 4, "label": "PER", "text": "Alan Turing"}]},
         SPAN_TEXT_MISMATCH.format(n=1, start=0, end=4, said="Alan Turing", found="Alan")),
        ({"spans": [{"start": 0, "end": 4, "label": "ORG"}]},
         SPAN_UNKNOWN_LABEL.format(n=1, label="ORG", labels=["LOC", "PER"])),
        ({"spans": [{"start": 0, "end": 11, "label": "PER"}, {"start": 5, "end": 11, "label": "LOC"}]},
         SPANS_OVERLAP.format(a="0-11 PER", b="5-11 LOC")),
        ({"spans": "not json"}, "The spans field is not valid JSON: Expecting value."),
    ],
)
def test_invalid_corrections_name_the_problem_and_write_nothing(world, correction, message):
    assert world.outputs[2].item.text == ALAN
    with pytest.raises(ServiceError) as exc:
        rate(world, 2, verdict="wrong", correction=correction)
    assert exc.value.field == "spans" and exc.value.message == message
    assert not Rating.objects.exists()


def test_the_model_s_own_spans_and_a_correct_verdict_with_spans_are_refused(world):
    with pytest.raises(ServiceError) as exc:
        rate(world, 2, verdict="wrong", correction=dict(world.outputs[2].value))
    assert exc.value.message == SAME_AS_MODEL
    with pytest.raises(ServiceError) as exc:
        rate(world, 2, verdict="correct", correction=fixed_alan(world))
    assert exc.value.message == CORRECT_TAKES_NO_CORRECTION
    assert not Rating.objects.exists()


def test_overlapping_corrections_pass_where_the_project_allows_them(users_by_role):
    world = span_world(users_by_role, allow_overlap=True)
    text = world.outputs[2].item.text
    nested = {"spans": [at(text, "Alan Turing", "PER"), at(text, "Turing", "LOC")]}
    assert rate(world, 2, verdict="wrong", correction=nested).correction == nested


def test_offsets_are_code_points_after_an_emoji(world):
    text = world.outputs[2].item.text
    assert "😀" in text
    after = {"spans": [at(text, "Alan Turing", "PER"), at(text, "twice", "LOC")]}
    assert text[after["spans"][1]["start"] :][:5] == "twice"
    assert rate(world, 2, verdict="wrong", correction=after).correction == after


# --- The page ------------------------------------------------------------------------------------


def page_url(world: RatingWorld) -> str:
    return reverse("rating-page", args=[world.project.pk, world.run.pk])


def submit_url(world: RatingWorld, index: int) -> str:
    return reverse("rating-submit", args=[world.project.pk, world.run.pk, world.outputs[index].pk])


def test_the_page_quotes_the_model_s_spans_and_offers_the_editor_filled_with_them(world, client):
    client.force_login(world.users["reviewer"])
    page = client.get(page_url(world), {"output": world.outputs[2].pk}).content.decode()
    assert "“Manchester”" in page and "“Alan Turing”" in page and "The model's spans" in page
    assert 'id="span-text"' in page and 'name="spans"' in page and "js/spans.js" in page
    editor = json.loads(page.split('id="spans-input" value="')[1].split('"')[0].replace("&quot;", '"'))
    assert editor == world.outputs[2].value["spans"]  # the fix starts from the model's spans
    assert "wrong: fix the spans" in page


def test_rating_through_the_page_correct_then_wrong_with_spans(world, client):
    client.force_login(world.users["reviewer"])
    response = client.post(submit_url(world, 1), {"verdict": "correct", "spans": "[]"}, **HTMX)
    assert response.status_code == 200 and "Rated item" in response.content.decode()
    spans = json.dumps(fixed_alan(world)["spans"])
    response = client.post(submit_url(world, 2), {"verdict": "wrong", "spans": spans, "note": "a city"}, **HTMX)
    assert response.status_code == 200
    ratings = {r.output_id: r for r in Rating.objects.all()}
    assert ratings[world.outputs[1].pk].verdict == "correct" and ratings[world.outputs[1].pk].correction is None
    wrong = ratings[world.outputs[2].pk]
    assert wrong.verdict == "wrong" and wrong.correction == fixed_alan(world) and wrong.note == "a city"


def test_a_refused_correction_comes_back_with_the_reviewer_s_spans_and_writes_nothing(world, client):
    client.force_login(world.users["reviewer"])
    bad = json.dumps([{"start": 0, "end": 11, "label": "PER"}, {"start": 5, "end": 11, "label": "LOC"}])
    response = client.post(submit_url(world, 2), {"verdict": "wrong", "spans": bad})
    page = response.content.decode()
    assert response.status_code == 400 and "overlap" in page and "does not allow overlapping spans" in page
    assert '&quot;start&quot;: 5' in page  # the editor keeps what the reviewer marked
    assert not Rating.objects.exists()
    htmx = client.post(submit_url(world, 2), {"verdict": "wrong", "spans": "[{"}, **HTMX)
    assert htmx.status_code == 200 and "not valid JSON" in htmx.content.decode()
    assert not Rating.objects.exists()


def test_annotators_are_refused_and_outsiders_see_nothing(world, client):
    for role, expected in (("annotator", 403), ("outsider", 404)):
        client.force_login(world.users[role])
        assert client.get(page_url(world)).status_code == expected
        assert client.post(submit_url(world, 1), {"verdict": "correct"}).status_code == expected
        api = api_as(world.users[role])
        rate_url = reverse("api-rating-list", args=[world.project.pk, world.run.pk])
        body = {"output_id": world.outputs[1].pk, "verdict": "correct"}
        assert api.post(rate_url, body, format="json").status_code == expected
    assert not Rating.objects.exists()
    assert APIClient().get(reverse("api-rating-next", args=[world.project.pk, world.run.pk])).status_code == 401


# --- The API and the export ----------------------------------------------------------------------


def test_the_api_serves_span_outputs_and_takes_span_corrections(world):
    api = api_as(world.users["reviewer"])
    next_url = reverse("api-rating-next", args=[world.project.pk, world.run.pk])
    rate_url = reverse("api-rating-list", args=[world.project.pk, world.run.pk])
    output = api.get(next_url).data["output"]
    assert output["id"] == world.outputs[0].pk and output["kind"] == "test" and "spans" in output["value"]
    text = world.outputs[2].item.text
    mismatch = {"spans": [{"start": 0, "end": 4, "label": "PER", "text": "Alan Turing"}]}
    response = api.post(rate_url, {"output_id": world.outputs[2].pk, "verdict": "wrong", "correction": mismatch},
                        format="json")
    assert response.status_code == 400 and response.data["field"] == "spans"
    assert "says its text is 'Alan Turing'" in response.data["detail"]
    assert not Rating.objects.exists()
    body = {"output_id": world.outputs[2].pk, "verdict": "wrong", "correction": fixed_alan(world)}
    created = api.post(rate_url, body, format="json")
    assert created.status_code == 201 and created.data["correction"] == fixed_alan(world)
    listed = api.get(rate_url, {"verdict": "wrong"}).data["results"]
    assert [row["correction"] for row in listed] == [fixed_alan(world)]
    assert text[listed[0]["correction"]["spans"][1]["start"] :].startswith("Manchester")


def test_the_export_carries_spans_with_their_quoted_text(world, client):
    rate(world, 1, verdict="correct")
    rate(world, 2, verdict="wrong", correction=fixed_alan(world))
    rows = {row["item_id"]: row for row in ratings_export_rows(project=world.project)}
    alan = rows[world.outputs[2].item_id]
    assert alan["verdict"] == "wrong"
    assert [(s["label"], s["text"]) for s in alan["correction"]["spans"]] == [("PER", "Alan Turing"),
                                                                            ("LOC", "Manchester")]
    assert [(s["label"], s["text"]) for s in alan["output"]["spans"]] == [("PER", "Alan Turing"),
                                                                        ("PER", "Manchester")]
    assert rows[world.outputs[1].item_id]["correction"] is None
    client.force_login(world.users["reviewer"])
    body = b"".join(client.get(reverse("ratings-export", args=[world.project.pk])).streaming_content).decode()
    lines = [json.loads(line) for line in body.splitlines()]
    assert any(line["correction"] and line["correction"]["spans"][1]["text"] == "Manchester" for line in lines)


# --- The next round ------------------------------------------------------------------------------


def test_span_corrections_feed_the_next_round_and_never_change_a_test_label(world):
    project, owner = world.project, world.users["owner"]
    test_item = world.outputs[0].item
    test_text = test_item.text
    test_label = Decision.objects.filter(item=test_item).latest("created_at").value
    # The reviewer "fixes" the test item too: held, the test split is sacred.
    rate(world, 0, verdict="wrong", correction={"spans": [at(test_text, "Ada Lovelace", "PER")]})
    rate(world, 1, verdict="correct")
    rate(world, 2, verdict="wrong", correction=fixed_alan(world))
    options = plan_options_parse(project=project, data={})

    plan = round_plan(project=project, options=options)
    assert [p.item.pk for p in plan.corrections] == [world.outputs[2].item_id]
    assert plan.summary()["test_split"]["corrections"] == 1
    figures = round_figures(project=project, runs=[world.run])
    assert figures["ratings"] == {"rated": 3, "correct": 1} and figures["rating_name"] == "rated correct"

    round_advance(project=project, user=owner, options=options)

    alan = Item.objects.get(pk=world.outputs[2].item_id)
    decision = Decision.objects.filter(item=alan).latest("created_at")
    assert decision.value == fixed_alan(world) and decision.source == DecisionSource.MODEL_CORRECTED
    assert alan.status == ItemStatus.APPROVED
    assert RoundChange.objects.filter(item=alan, kind=RoundChange.Kind.CORRECTION).count() == 1
    assert Decision.objects.filter(item=test_item).count() == 1
    assert Decision.objects.filter(item=test_item).latest("created_at").value == test_label
    assert not RoundChange.objects.filter(item=test_item).exists()
    # Rated correct is not a change: the item stays where it was.
    assert not Decision.objects.filter(item_id=world.outputs[1].item_id).exists()


# --- The span run's page -------------------------------------------------------------------------


def test_the_run_page_marks_the_spans_in_the_text_and_charts_f1_per_label(world, client):
    run = world.run
    run.metrics = {"test": {"n": 1, "f1": 0.8, "precision": 1.0, "recall": 0.67, "per_label": {
        "PER": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 2},
        "LOC": {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1},
    }}}
    run.save(update_fields=["metrics"])
    client.force_login(world.users["reviewer"])
    page = client.get(reverse("run-detail", args=[world.project.pk, run.pk])).content.decode()
    assert 'id="span-outputs"' in page and 'id="run-rate"' in page
    # Manchester, tagged as a person: the word itself, marked in PER's colour with its label after it.
    assert 'title="PER" data-tag="PER">Manchester</span>' in page
    assert value_display(world.outputs[2].value) not in page  # "PER 0-11, PER 20-30": no offsets to decode
    data = json.loads(page.split('id="run-chart-data" type="application/json">')[1].split("</script>")[0])
    assert data["per_label"] == {"labels": ["LOC", "PER"], "f1": [0.0, 1.0], "support": [1, 2]}
    assert "Entity F1 per label on the test split" in page
