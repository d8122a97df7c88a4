"""The rating pages: the permission matrix (every page × role), the htmx rating loop (one round trip, a constant
number of queries), errors next to the form with nothing written, confidence hidden unless the owner shows it,
blind A/B pages that never reveal a run, streamed exports. The API's tests are in test_apis.py.

    page / endpoint                                   owner  annotator  reviewer  outsider  anonymous
    GET  ratings/                                      200     403        200       404       login
    GET  ratings/runs/{run}/                           200     403        200       404       login
    POST ratings/runs/{run}/outputs/{output}/ (htmx)   200     403        200       404       login
    POST ratings/comparisons/                          302     403        403       404       login
    GET  ratings/comparisons/{c}/                      200     403        200       404       login
    POST ratings/comparisons/{c}/items/{item}/ (htmx)  200     403        200       404       login
    GET  ratings/export/ratings.jsonl                  200     403        200       404       login
    GET  ratings/export/preferences.jsonl              200     403        200       404       login
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import reverse
from django.utils.html import escape

from annotation.models import Project
from tests.fixtures.people import add_items
from tests.fixtures.ratings import RatingWorld, classification_world, generation_world
from training.models import Comparison, ModelOutput, Preference, Rating
from training.ratings import urls as ratings_urls
from training.ratings.services import (
    NOT_GENERATION,
    SCORE_RANGE,
    WRONG_NEEDS_LABEL,
    comparison_create,
    preference_submit,
    rating_submit,
)

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
HTMX = {"HTTP_HX_REQUEST": "true"}
SCORES = {"score:correct": "4", "score:helpful": "5", "score:follows the guidelines": "3"}


@dataclass(frozen=True)
class Row:
    method: str
    name: str
    expected: tuple[int, int, int, int, int]
    # (world, comparison) -> (url kwargs, body)
    prepare: Callable[[RatingWorld, Comparison], tuple[dict, dict]]
    htmx: bool = False


def _project(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk}, {}


def _run(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk, "run_id": w.run.pk}, {}


def _output(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk, "run_id": w.run.pk, "output_id": w.outputs[0].pk}, SCORES


def _compare(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk}, {"run_a": w.run.pk, "run_b": w.other_run.pk}


def _comparison(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk, "comparison_id": c.pk}, {}


def _choice(w: RatingWorld, c: Comparison) -> tuple[dict, dict]:
    return {"project_id": w.project.pk, "comparison_id": c.pk, "item_id": w.outputs[0].item_id}, {"choice": "1"}


LOGIN = 302
PAGES = [
    Row("get", "rating-home", (200, 403, 200, 404, LOGIN), _project),
    Row("get", "rating-page", (200, 403, 200, 404, LOGIN), _run),
    Row("post", "rating-submit", (200, 403, 200, 404, LOGIN), _output, htmx=True),
    Row("post", "comparison-create", (302, 403, 403, 404, LOGIN), _compare),
    Row("get", "comparison-page", (200, 403, 200, 404, LOGIN), _comparison),
    Row("post", "comparison-submit", (200, 403, 200, 404, LOGIN), _choice, htmx=True),
    Row("get", "ratings-export", (200, 403, 200, 404, LOGIN), _project),
    Row("get", "preferences-export", (200, 403, 200, 404, LOGIN), _project),
]


@pytest.fixture
def gen(users_by_role) -> RatingWorld:
    return generation_world(users_by_role)


@pytest.fixture
def comparison(gen) -> Comparison:
    return comparison_create(project=gen.project, user=gen.users["owner"], run_a=gen.run, run_b=gen.other_run)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", PAGES, ids=[row.name for row in PAGES])
def test_page_status_per_role(gen, comparison, client, row, role):
    kwargs, body = row.prepare(gen, comparison)
    if role != "anonymous":
        client.force_login(gen.users[role])
    extra = HTMX if row.htmx else {}
    response = getattr(client, row.method)(reverse(row.name, kwargs=kwargs), body, **extra)
    assert response.status_code == row.expected[ROLES.index(role)]
    if role == "anonymous":
        assert response["Location"].startswith(reverse("login"))
    written = Rating.objects.count() + Preference.objects.count()
    if row.expected[ROLES.index(role)] >= 400 or role == "anonymous":
        assert written == 0, "a refused request wrote nothing"


def test_the_matrix_covers_every_rating_page():
    assert {p.name for p in ratings_urls.urlpatterns} == {row.name for row in PAGES}


def test_the_project_page_links_to_rating_for_reviewers_and_owners_only(gen, client):
    url = reverse("rating-home", args=[gen.project.pk])
    for role, shown in (("owner", True), ("reviewer", True), ("annotator", False)):
        client.force_login(gen.users[role])
        assert (url in client.get(reverse("project-detail", args=[gen.project.pk])).content.decode()) is shown


# --- The rating loop -----------------------------------------------------------------------------


@pytest.fixture
def cls(users_by_role) -> RatingWorld:
    return classification_world(users_by_role)


def submit_url(world: RatingWorld, output: ModelOutput) -> str:
    return reverse("rating-submit", args=[world.project.pk, world.run.pk, output.pk])


def test_enter_submits_and_the_next_output_comes_back_in_the_same_round_trip(cls, client):
    client.force_login(cls.users["reviewer"])
    page = client.get(reverse("rating-page", args=[cls.project.pk, cls.run.pk])).content.decode()
    assert "I love it" in page and "test split" in page and "4 left for you" in page
    assert 'data-hotkey="1"' in page and "js/rating.js" in page

    response = client.post(submit_url(cls, cls.outputs[0]), {"verdict": "correct", "shown_at": "1"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and 'id="rating-workspace"' in html and "<html" not in html
    assert "I hate it" in html and "Rated item" in html
    response = client.post(submit_url(cls, cls.outputs[1]), {"verdict": "wrong", "label": "negative"}, **HTMX)
    assert "What a day" in response.content.decode() and "unlabelled" in response.content.decode()
    stored = list(Rating.objects.order_by("id").values_list("verdict", "correction"))
    assert stored == [("correct", None), ("wrong", {"label": "negative"})]
    # Without htmx the form still works: a redirect to the next output.
    response = client.post(submit_url(cls, cls.outputs[2]), {"verdict": "correct"})
    assert response.status_code == 302
    assert response["Location"] == reverse("rating-page", args=[cls.project.pk, cls.run.pk])


def test_an_invalid_rating_shows_the_field_and_keeps_the_output(cls, client):
    client.force_login(cls.users["reviewer"])
    response = client.post(submit_url(cls, cls.outputs[0]), {"verdict": "wrong"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and WRONG_NEEDS_LABEL in html and 'class="field-error">label' in html
    assert "I love it" in html and 'value="wrong" data-verdict-key="w" checked' in html
    response = client.post(submit_url(cls, cls.outputs[0]), {"verdict": "wrong", "label": "angry"})
    assert response.status_code == 400 and "Unknown label" in response.content.decode()
    assert not Rating.objects.exists()


def test_generation_scores_and_a_corrected_response_from_the_form(users_by_role, client):
    gen = generation_world(users_by_role)
    client.force_login(gen.users["reviewer"])
    page = client.get(reverse("rating-page", args=[gen.project.pk, gen.run.pk])).content.decode()
    assert 'name="score:follows the guidelines"' in page and "blue number 0" in page
    bad = client.post(submit_url(gen, gen.outputs[0]), {**SCORES, "score:helpful": "9"}, **HTMX).content.decode()
    assert "scores.helpful" in bad and SCORE_RANGE in bad and not Rating.objects.exists()
    assert 'name="score:correct" value="4" checked' in bad  # what was typed survives the error
    client.post(submit_url(gen, gen.outputs[0]), {**SCORES, "response": "The sky is blue.", "note": "terse"}, **HTMX)
    rating = Rating.objects.get()
    assert rating.scores == {"correct": 4, "helpful": 5, "follows the guidelines": 3}
    assert rating.correction == {"response": "The sky is blue."} and rating.note == "terse"


def test_confidence_is_hidden_from_raters_unless_the_owner_shows_it(cls, client):
    client.force_login(cls.users["reviewer"])
    url = reverse("rating-page", args=[cls.project.pk, cls.run.pk])
    page = client.get(url).content.decode()
    assert "confidence" not in page.lower() and "0.700" not in page
    Project.objects.filter(pk=cls.project.pk).update(show_model_confidence=True)
    page = client.get(url).content.decode()
    assert 'id="model-confidence"' in page and "0.700" in page


# Counted on SQLite: session + user (2), access_project (1), the run (1), the output with its split (1),
# labels (1), the guideline version (1), the insert (1), the next output and how many remain (2).
RATING_LOOP_QUERIES = 10


@pytest.mark.parametrize("extra", [0, 60])
def test_the_rating_loop_runs_a_constant_number_of_queries(cls, client, extra, django_assert_num_queries):
    items = add_items(cls.project, [f"more text {i}" for i in range(extra)])
    ModelOutput.objects.bulk_create(ModelOutput(run=cls.run, item=item, value={"label": "neutral"}) for item in items)
    client.force_login(cls.users["reviewer"])
    client.get(reverse("rating-page", args=[cls.project.pk, cls.run.pk]))
    with django_assert_num_queries(RATING_LOOP_QUERIES):
        response = client.post(submit_url(cls, cls.outputs[0]), {"verdict": "correct"}, **HTMX)
    assert response.status_code == 200 and "I hate it" in response.content.decode()


# --- Blind A/B -----------------------------------------------------------------------------------

RUN_PKS = (913577, 913583)
RUN_NAMES = ("zebra-alpha-run", "yak-beta-run")
OUTPUT_PK_BASE = 771100
PROMPTS = 24
CSRF = re.compile(r'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]+"')


def assert_blind(html: str, world: RatingWorld) -> None:
    html = CSRF.sub(r'\1-"', html)
    secrets = [str(pk) for pk in RUN_PKS] + list(RUN_NAMES)
    secrets += [str(o.pk) for o in world.outputs + world.other_outputs]
    leaked = [secret for secret in secrets if secret in html]
    assert not leaked, f"the page names a run or an output: {leaked}"
    assert "/runs/" not in html
    assert set(re.findall(r'name="([^"]+)"', html)) <= {"csrfmiddlewaretoken", "choice", "viewport", "htmx-config"}


def test_the_comparison_page_never_reveals_a_run_and_the_order_varies(users_by_role, client):
    world = generation_world(users_by_role, prompts=PROMPTS, run_pks=RUN_PKS, names=RUN_NAMES,
                             output_pk_base=OUTPUT_PK_BASE)
    assert (world.run.pk, world.other_run.pk) == RUN_PKS
    comparison = comparison_create(project=world.project, user=world.users["owner"], run_a=world.run,
                                           run_b=world.other_run)
    reviewer = world.users["reviewer"]
    client.force_login(reviewer)
    page_url = reverse("comparison-page", args=[world.project.pk, comparison.pk])
    a_first = []
    html = client.get(page_url).content.decode()
    for i in range(PROMPTS):
        assert_blind(html, world)
        match = re.search(r'<h3>Response 1</h3>\s*<div class="item-text">(.*?)</div>', html, re.S)
        a_first.append(match.group(1).startswith("blue"))
        item_id = int(re.search(r"/items/(\d+)/", html).group(1))
        choice = ("1", "2", "tie")[i % 3]
        html = client.post(reverse("comparison-submit", args=[world.project.pk, comparison.pk, item_id]),
                           {"choice": choice}, **HTMX).content.decode()
    assert_blind(html, world)
    assert "All judged" in html
    assert set(a_first) == {True, False}, "the order must vary from item to item"
    # The owner's page is blind as well; only the overview names the runs.
    client.force_login(world.users["owner"])
    assert_blind(client.get(page_url).content.decode(), world)
    home = client.get(reverse("rating-home", args=[world.project.pk])).content.decode()
    assert "zebra-alpha-run" in home and 'id="comparison-results"' in home
    client.force_login(reviewer)
    home = client.get(reverse("rating-home", args=[world.project.pk])).content.decode()
    assert 'id="comparison-results"' not in home



def test_a_classification_project_offers_no_comparison_and_says_why(cls, client):
    client.force_login(cls.users["owner"])
    home = client.get(reverse("rating-home", args=[cls.project.pk])).content.decode()
    assert escape(NOT_GENERATION) in home and 'id="comparison-form"' not in home
    response = client.post(reverse("comparison-create", args=[cls.project.pk]), {"run_a": cls.run.pk, "run_b": 0})
    assert response.status_code == 302 and not Comparison.objects.exists()


# --- Exports ----------------------------------------------------------------------


def test_exports_stream_jsonl(gen, comparison, client):
    preference_submit(comparison=comparison, rater=gen.users["reviewer"], item_id=gen.outputs[0].item_id,
                              choice="1")
    rating_submit(rater=gen.users["reviewer"], output=gen.outputs[1], project=gen.project,
                          scores={"correct": 2, "helpful": 2, "follows the guidelines": 2},
                          correction={"response": "Green, of course."})
    client.force_login(gen.users["reviewer"])
    for name in ("preferences-export",):
        response = client.get(reverse(name, args=[gen.project.pk]))
        assert response.streaming and response["Content-Type"].startswith("application/jsonl")
        lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
        assert len(lines) == 2 and all(set(line) == {"prompt", "chosen", "rejected"} for line in lines)
    for name in ("ratings-export",):
        response = client.get(reverse(name, args=[gen.project.pk]))
        lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
        assert [line["correction"] for line in lines] == [{"response": "Green, of course."}]
        assert 'filename="project-' in response["Content-Disposition"]


def test_a_succeeded_run_links_to_rating_its_outputs(cls, client):
    client.force_login(cls.users["reviewer"])
    page = client.get(reverse("run-detail", args=[cls.project.pk, cls.run.pk])).content.decode()
    assert reverse("rating-page", args=[cls.project.pk, cls.run.pk]) in page and "Rate outputs" in page


def test_rating_rows_are_read_only_in_the_admin(cls, admin_client):
    rating_submit(rater=cls.users["reviewer"], output=cls.outputs[0], project=cls.project, verdict="correct")
    assert admin_client.get(reverse("admin:training_rating_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:training_rating_add")).status_code == 403
