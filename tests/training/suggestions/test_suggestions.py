"""Pre-labelling end to end: runs through a real RQ SimpleWorker, provenance, accuracy beside the baselines,
the two uses (ordering, pre-labels) and the promise that annotators see nothing unless the owner shows it.

The encoder is the quality tests' hashing bag-of-words embedder and the causal LM the tiny Llama built from a
config (tests/fixtures/tiny_models.py): nothing is downloaded and a run takes well under a second.
"""

from __future__ import annotations

import django_rq
import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.annotate.services import claim_next
from annotation.models import (
    Annotation,
    Decision,
    DecisionSource,
    Item,
    ItemSplit,
    ItemStatus,
    Project,
    Role,
    Split,
    TaskType,
)
from annotation.projects.services import membership_set, project_create
from annotation.review.selectors import latest_decisions
from core import durations
from core.queues import JsonSimpleWorker
from tests.annotation.quality.test_views import VOCAB, hashing_embed
from tests.fixtures.api import next_item
from tests.fixtures.people import acknowledge_guidelines, add_items
from training.ml.predict import generate_responses
from training.models import Suggestion, SuggestionMethod, SuggestionRun, SuggestionRunStatus
from training.suggestions import services as suggestions

__all__ = ["hashing_embed"]  # settings name it by this module's path


@pytest.fixture(autouse=True)
def fake_models(settings, tiny_llama):
    settings.LABELLOOP_EMBEDDER = "tests.training.suggestions.test_suggestions.hashing_embed"
    settings.LABELLOOP_MODEL_REGISTRY = {"tiny-llama": str(tiny_llama)}
    settings.LABELLOOP_PRELABEL_LLM = "tiny-llama"
    django_rq.get_queue(suggestions.QUEUE).empty()


def word_text(label: str, i: int) -> str:
    vocab = VOCAB[label].split()
    return " ".join(vocab[(i * step + step) % 8] for step in (1, 2, 3, 5)) + f" note {i}"


def approve_corpus(project: Project, per_class: int = 12) -> list[Item]:
    """Approved items whose words give their class away (final labels from an import)."""
    texts, labels = [], []
    for label in VOCAB:
        for i in range(per_class):
            texts.append(word_text(label, i))
            labels.append(label)
    items = add_items(project, texts)
    for item, label in zip(items, labels, strict=True):
        Decision.objects.create(item=item, value={"label": label}, source=DecisionSource.IMPORT)
    Item.objects.filter(pk__in=[i.pk for i in items]).update(status=ItemStatus.APPROVED, is_open=False)
    return items


def unlabelled(project: Project) -> list[Item]:
    return list(Item.objects.filter(project=project, status=ItemStatus.NEW).order_by("pk"))


def run_worker() -> None:
    django_rq.get_worker(suggestions.QUEUE, worker_class=JsonSimpleWorker).work(burst=True)


def start_and_run(client, project: Project, method: str, capture, **extra) -> SuggestionRun:
    with capture(execute=True):
        response = client.post(reverse("suggestion-run-start", args=[project.pk]), {"method": method, **extra})
    assert response.status_code == 302, response.content.decode()[:2000]
    run = SuggestionRun.objects.get(project=project)
    assert run.status == SuggestionRunStatus.QUEUED
    run_worker()
    run.refresh_from_db()
    assert run.status == SuggestionRunStatus.SUCCEEDED, run.message
    return run


@pytest.fixture
def corpus(project) -> Project:
    """The shared project (three labels, five unlabelled items) with 36 approved items and some new ones."""
    approve_corpus(project)
    add_items(project, [word_text(label, 20 + i) for i in range(3) for label in VOCAB])
    return project


def test_an_embedding_run_suggests_for_unlabelled_items_with_provenance_and_measures_itself(
    corpus, owner, client, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    before = (Annotation.objects.count(), Decision.objects.count(), latest_decisions(project=corpus).count())
    run = start_and_run(client, corpus, SuggestionMethod.EMBEDDING_K_SHOT, django_capture_on_commit_callbacks)

    waiting = unlabelled(corpus)
    made = {s.item_id: s for s in Suggestion.objects.filter(run=run)}
    assert set(made) == {item.pk for item in waiting}  # unlabelled items only, every one of them
    for suggestion in made.values():
        assert suggestion.value["label"] in VOCAB
        assert sum(suggestion.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert suggestion.score == max(suggestion.probabilities.values())
    # The words give the class away: the new items written from a class's vocabulary get that class.
    right = sum(made[item.pk].value["label"] == label for item, label in zip(waiting[5:], list(VOCAB) * 3, strict=True))
    assert right >= 7

    # Provenance: method, model, guideline version, the few-shot examples (approved items), when.
    assert run.model_name == "test-hashing-64" and run.guideline_version.version == 1
    approved = set(latest_decisions(project=corpus).values_list("item_id", flat=True))
    assert run.shot_item_ids and set(run.shot_item_ids) <= approved
    api = APIClient()
    api.force_authenticate(owner)
    listed = api.get(reverse("api-suggestion-list", args=[corpus.pk, run.pk])).json()
    assert listed["count"] == len(made)
    provenance = listed["results"][0]["provenance"]
    assert provenance["method"] == "embedding_k_shot" and provenance["model"] == "test-hashing-64"
    assert provenance["guideline_version"] == 1 and provenance["few_shot_item_ids"] == run.shot_item_ids
    assert provenance["created_at"] and listed["results"][0]["created_at"]

    # Accuracy on labelled items it never saw as examples, beside the training page's five baselines.
    evaluation = run.summary["evaluation"]
    assert evaluation["items"] > 0
    figures = evaluation["suggestions"]
    assert 0 <= figures["accuracy_ci"][0] <= figures["accuracy"] <= figures["accuracy_ci"][1] <= 1
    assert set(evaluation["baselines"]) == {"majority", "tfidf_logreg", "logreg_embeddings", "zero_shot", "k_shot"}
    for baseline in evaluation["baselines"].values():
        assert baseline["n"] == figures["n"] and len(baseline["accuracy_ci"]) == 2
    assert figures["accuracy"] > evaluation["baselines"]["majority"]["accuracy"]

    # Suggestions are not labels: no annotation, decision or final label came from the run.
    after = (Annotation.objects.count(), Decision.objects.count(), latest_decisions(project=corpus).count())
    assert after == before
    html = client.get(reverse("suggestion-run-detail", args=[corpus.pk, run.pk])).content.decode()
    assert 'id="suggestion-comparison"' in html and "Baseline: TF-IDF + logistic regression" in html
    assert "Pre-labels bias blind annotation" in html


def test_few_shot_examples_are_never_measured_on(corpus, owner):
    approved = list(latest_decisions(project=corpus).order_by("item_id").values_list("item_id", flat=True))
    ItemSplit.objects.bulk_create(ItemSplit(item_id=pk, split=Split.TEST) for n, pk in enumerate(approved) if n % 3)
    run = suggestions.suggestion_run_start(project=corpus, user=owner, method=SuggestionMethod.LLM_FEW_SHOT)
    from training.suggestions.jobs import suggestion_run_job

    suggestion_run_job(run.pk)
    run.refresh_from_db()
    assert run.status == SuggestionRunStatus.SUCCEEDED, run.message
    tests = set(ItemSplit.objects.filter(split=Split.TEST).values_list("item_id", flat=True))
    assert run.shot_item_ids and not set(run.shot_item_ids) & tests  # examples come from outside the test split
    assert len(run.shot_item_ids) == suggestions.FEW_SHOT_PER_LABEL * len(VOCAB)
    assert run.summary["evaluation"]["on"] == "test split" and run.summary["evaluation"]["items"] == 24
    assert Suggestion.objects.filter(run=run).count() == len(unlabelled(corpus))
    assert all(s.value["label"] in VOCAB for s in Suggestion.objects.filter(run=run))


def test_llm_zero_shot_scores_every_label_and_reports_an_eta(corpus, owner, client, django_capture_on_commit_callbacks):
    client.force_login(owner)
    run = start_and_run(
        client, corpus, SuggestionMethod.LLM_ZERO_SHOT, django_capture_on_commit_callbacks, max_items="4"
    )
    made = list(Suggestion.objects.filter(run=run))
    assert len(made) == 4  # capped
    for suggestion in made:
        assert set(suggestion.probabilities) == set(VOCAB)
        assert suggestion.value["label"] == max(suggestion.probabilities, key=suggestion.probabilities.get)
    assert run.model_name == "tiny-llama" and run.shot_item_ids == []
    assert "constrained choice" in run.summary["method"]
    assert run.eta_seconds is None and run.progress == 1.0
    assert durations.left(42) == "about 40 s left" and durations.left(600) == "about 10 min left"


def test_pre_labels_reach_annotators_only_when_the_owner_shows_them(
    corpus, owner, annotator, client, django_capture_on_commit_callbacks
):
    acknowledge_guidelines(corpus, annotator)
    client.force_login(owner)
    run = start_and_run(client, corpus, SuggestionMethod.EMBEDDING_ZERO_SHOT, django_capture_on_commit_callbacks)
    assert not corpus.show_prelabels and not run.shown_as_prelabels  # off by default
    api = APIClient()
    api.force_authenticate(annotator)

    # Off: neither the annotate page nor the annotate API shows any suggestion.
    client.force_login(annotator)
    page = client.get(reverse("annotate", args=[corpus.pk])).content.decode()
    assert 'id="prelabel"' not in page
    claimed = next_item(api, corpus)
    assert "prelabel" not in claimed
    assert all(item.prelabel is None for item in unlabelled(corpus))

    client.force_login(owner)
    response = client.post(
        reverse("suggestion-run-apply", args=[corpus.pk, run.pk]), {"show_as_prelabels": "1"}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    corpus.refresh_from_db()
    assert run.shown_as_prelabels and corpus.show_prelabels
    held = Item.objects.get(pk=claimed["item_id"])
    suggested = Suggestion.objects.get(run=run, item=held).value
    assert held.prelabel == suggested
    client.force_login(annotator)
    page = client.get(reverse("annotate", args=[corpus.pk])).content.decode()
    assert 'id="prelabel"' in page and suggested["label"] in page
    assert next_item(api, corpus)["prelabel"] == suggested

    # Off again: the pre-labels it wrote are gone and the switch is off.
    client.force_login(owner)
    client.post(reverse("suggestion-run-apply", args=[corpus.pk, run.pk]), {})
    corpus.refresh_from_db()
    assert not corpus.show_prelabels and Item.objects.get(pk=held.pk).prelabel is None
    client.force_login(annotator)
    assert 'id="prelabel"' not in client.get(reverse("annotate", args=[corpus.pk])).content.decode()
    assert "prelabel" not in next_item(api, corpus)


def test_an_imported_pre_label_is_kept_when_suggestions_are_shown(corpus, owner):
    first = unlabelled(corpus)[0]
    Item.objects.filter(pk=first.pk).update(prelabel={"label": "neutral"})
    run = suggestions.suggestion_run_start(project=corpus, user=owner, method=SuggestionMethod.EMBEDDING_ZERO_SHOT)
    suggestions.suggestion_run_execute(run=suggestions.suggestion_run_claim(run_id=run.pk))
    run.refresh_from_db()
    suggestions.suggestion_run_apply(run=run, use_for_ordering=False, show_as_prelabels=True)
    assert Item.objects.get(pk=first.pk).prelabel == {"label": "neutral"}
    suggestions.suggestion_run_apply(run=run, use_for_ordering=False, show_as_prelabels=False)
    assert Item.objects.get(pk=first.pk).prelabel == {"label": "neutral"}  # not this run's: left alone


def test_ordering_gives_the_least_sure_items_first_when_chosen(corpus, owner, annotator):
    acknowledge_guidelines(corpus, annotator)
    Project.objects.filter(pk=corpus.pk).update(random_share=0.0)
    # Only the items written from the classes' words wait: the fixture's five "review number" items would all tie.
    Item.objects.filter(project=corpus, text__startswith="review number").update(is_open=False)
    run = suggestions.suggestion_run_start(project=corpus, user=owner, method=SuggestionMethod.EMBEDDING_K_SHOT)
    suggestions.suggestion_run_execute(run=suggestions.suggestion_run_claim(run_id=run.pk))
    run.refresh_from_db()
    rows = list(Suggestion.objects.filter(run=run))
    margins = {s.item_id: 1 - np.subtract(*sorted(s.probabilities.values(), reverse=True)[:2]) for s in rows}
    least_sure = max(margins, key=lambda pk: (margins[pk], -pk))
    assert least_sure != min(margins), "the test needs an order that differs from the items' own"

    suggestions.suggestion_run_apply(run=run, use_for_ordering=True, show_as_prelabels=False)
    assert claim_next(annotator=annotator, project=corpus).item.pk == least_sure
    assert not Project.objects.get(pk=corpus.pk).show_prelabels  # ordering shows annotators nothing

    suggestions.suggestion_run_apply(run=run, use_for_ordering=False, show_as_prelabels=False)
    assert set(Item.objects.filter(pk__in=margins).values_list("priority", flat=True)) == {0}


def test_refusals_name_the_problem_and_create_nothing(project, owner, client):
    client.force_login(owner)
    start = reverse("suggestion-run-start", args=[project.pk])
    cases = [
        ({"method": "telepathy"}, "Unknown method"),
        ({"method": SuggestionMethod.EMBEDDING_K_SHOT}, "needs approved items of at least two labels"),
        ({"method": SuggestionMethod.LLM_RESPONSE}, "instruction"),
        ({"method": SuggestionMethod.EMBEDDING_ZERO_SHOT, "max_items": "0"}, "whole number from 1 to 20000"),
        ({"method": SuggestionMethod.EMBEDDING_ZERO_SHOT, "max_items": "lots"}, "whole number from 1"),
    ]
    for data, message in cases:
        response = client.post(start, data)
        assert response.status_code == 400 and message in response.content.decode(), data
    assert not SuggestionRun.objects.exists()

    multi = project_create(owner=owner, name="Topics", labels=["a", "b"], task_type=TaskType.MULTI_LABEL)
    response = client.post(reverse("suggestion-run-start", args=[multi.pk]), {"method": "embedding_zero_shot"})
    assert response.status_code == 400 and "single-label projects only" in response.content.decode()

    suggestions.suggestion_run_start(project=project, user=owner, method=SuggestionMethod.EMBEDDING_ZERO_SHOT)
    response = client.post(start, {"method": SuggestionMethod.EMBEDDING_ZERO_SHOT})
    assert response.status_code == 400 and suggestions.RUN_ACTIVE in response.content.decode()
    assert SuggestionRun.objects.count() == 1


def test_instruction_projects_get_draft_responses_from_the_untuned_model(owner, annotator, db):
    project = project_create(owner=owner, name="Chat", labels=[], task_type=TaskType.INSTRUCTION)
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    approved = add_items(project, [f"what colour is the sky {i}" for i in range(4)])
    for item in approved:
        Decision.objects.create(item=item, value={"response": "the sky is blue"}, source=DecisionSource.IMPORT)
    Item.objects.filter(pk__in=[i.pk for i in approved]).update(status=ItemStatus.APPROVED, is_open=False)
    waiting = add_items(project, ["what colour is the grass", "what colour is the snow"])
    assert "classification" in suggestions.suggestion_blocker(project=project, method="llm_zero_shot")
    run = suggestions.suggestion_run_start(project=project, user=owner, method=SuggestionMethod.LLM_RESPONSE)
    suggestions.suggestion_run_execute(run=suggestions.suggestion_run_claim(run_id=run.pk))
    run.refresh_from_db()
    made = {s.item_id: s.value for s in Suggestion.objects.filter(run=run)}
    # Each suggestion is the untuned model's greedy draft for the prompt; a draft left empty suggests nothing.
    model, tokenizer, device = suggestions._load_llm()
    drafts = generate_responses(
        model, tokenizer, [item.text for item in waiting], max_length=suggestions.LLM_MAX_LENGTH,
        max_new_tokens=suggestions.RESPONSE_NEW_TOKENS, batch_size=suggestions.RESPONSE_BATCH, device=device,
    )
    expected = {item.pk: {"response": d.strip()} for item, d in zip(waiting, drafts, strict=True) if d.strip()}
    assert made == expected and run.summary["empty_drafts"] == len(waiting) - len(expected)
    figures = run.summary["evaluation"]["suggestions"]
    assert figures["n"] == 1 and 0 <= figures["rouge_l"] <= 1  # 30 % of four approved items held out


def test_a_run_that_fails_says_why(corpus, owner, settings):
    settings.LABELLOOP_PRELABEL_LLM = "no-such-model"
    run = suggestions.suggestion_run_start(project=corpus, user=owner, method=SuggestionMethod.LLM_ZERO_SHOT)
    from training.suggestions.jobs import suggestion_run_job

    suggestion_run_job(run.pk)
    suggestion_run_job(run.pk)  # delivered twice: the second delivery finds it taken and does nothing
    run.refresh_from_db()
    assert run.status == SuggestionRunStatus.FAILED and "unknown base model 'no-such-model'" in run.message
    assert not Suggestion.objects.filter(run=run).exists()


def test_the_run_page_follows_a_running_job_with_its_eta_then_reloads_once_it_ends(project, owner, client):
    client.force_login(owner)
    run = SuggestionRun.objects.create(
        project=project, method=SuggestionMethod.LLM_ZERO_SHOT, model_name="tiny-llama", created_by=owner,
        status=SuggestionRunStatus.RUNNING, progress=0.25, eta_seconds=130, message="Scored 50 of 200 items",
    )
    url = reverse("suggestion-run-detail", args=[project.pk, run.pk])
    fragment = client.get(url, headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert "Scored 50 of 200 items" in html and "about 2 min left" in html and 'hx-trigger="every 2s"' in html
    assert "HX-Refresh" not in fragment
    SuggestionRun.objects.filter(pk=run.pk).update(status=SuggestionRunStatus.SUCCEEDED, progress=1.0)
    ended = client.get(url, headers={"HX-Request": "true"})
    assert ended["HX-Refresh"] == "true" and "every 2s" not in ended.content.decode()


def test_span_projects_are_refused_with_their_own_reason(owner, db):
    from tests.fixtures.spans import span_project

    project = span_project(owner)
    for method in SuggestionMethod.values:
        expected = suggestions.GENERATIVE_ONLY if method == SuggestionMethod.LLM_RESPONSE else suggestions.SPANS
        assert suggestions.suggestion_blocker(project=project, method=method) == expected
