"""Starting a round rewrites final labels: the page asks first, saying how many items change and how."""

from __future__ import annotations

from django.urls import reverse

from annotation.models import Decision, Item, ReviewTask
from tests.fixtures.rounds import approve, output_row, rating_row, run_row
from training.models import Round, Verdict
from training.rounds.services import round_open


def test_the_confirmation_counts_the_changes_and_writes_nothing(project, owner, reviewer, client):
    labelled = Item.objects.filter(project=project).order_by("pk").first()
    approve(labelled, {"label": "positive"})
    run = run_row(project, owner)
    rating_row(output_row(run, labelled, "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "negative"})
    round_open(project=project)
    client.force_login(owner)
    url = reverse("round-advance", args=[project.pk])
    form = {"round": "1", "queue_order": "random", "prelabels": "1", "random_share": "0.2"}

    page = client.post(url, form).content.decode()
    assert "Start round 2?" in page and "Closing round 1 cannot be undone" in page
    assert 'id="confirm-labels-changed"><strong>1</strong> item gets a new final label (1 rater correction)' in page
    assert 'id="confirm-to-review"><strong>0</strong> items go to the review queue' in page
    assert "unlabelled items in the annotation queue are reordered (random" in page
    assert "get the model's value as a pre-label" in page
    for key, value in form.items():  # the options travel to the real start unchanged
        assert f'name="{key}" value="{value}"' in page
    assert Decision.objects.filter(item=labelled).count() == 1 and not ReviewTask.objects.exists()
    assert Round.objects.get(project=project).closed_at is None

    done = client.post(url, {**form, "confirm": "1"})
    assert done.status_code == 302 and Round.objects.filter(project=project).count() == 2
    assert Decision.objects.filter(item=labelled).latest("created_at", "id").value == {"label": "negative"}
