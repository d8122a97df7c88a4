"""Project pages through Django's test client: create, detail, settings, and guidelines (safe rendering,
publish with a diff preview, acknowledgement)."""

from __future__ import annotations

from html.parser import HTMLParser

from django.urls import reverse
from django.utils.html import escape

from annotation.annotate import services as svc
from annotation.models import (
    GuidelineAcknowledgement,
    GuidelineVersion,
    Label,
    Membership,
    Project,
    Role,
    TaskType,
)
from annotation.projects.forms import PREVIEW_STALE, body_digest
from annotation.projects.services import (
    HOTKEY_RESERVED,
    LABEL_LISTED_TWICE,
    LABEL_RENAME_IN_USE,
    LAST_OWNER,
    guideline_publish,
)
from annotation.projects.views import MEMBER_UNKNOWN
from tests.fixtures.api import api_as
from tests.fixtures.pages import held_item, url
from tests.fixtures.people import acknowledge_guidelines

LABELS = ["positive", "negative", "neutral"]


# --- Create, detail, settings --------------------------------------------------------------------


def test_create_project_makes_the_user_its_owner(client, outsider):
    client.force_login(outsider)
    response = client.post(
        url("project-create"),
        {
            "name": "Toxicity",
            "task_type": TaskType.SINGLE_LABEL,
            "labels": "toxic, fine",
            "overlap": 3,
            "lease_seconds": 600,
            "goal_metric": "",
            "guidelines": "# Toxic\n\nInsults count.",
        },
    )
    project = Project.objects.get(name="Toxicity")
    assert response.status_code == 302 and response["Location"] == url("project-detail", project.pk)
    assert Membership.objects.get(project=project, user=outsider).role == Role.OWNER
    assert [lb.name for lb in project.labels.all()] == ["toxic", "fine"]
    assert (project.overlap, project.lease_seconds) == (3, 600)
    assert project.routing_budget == 3.5  # the budget field left empty: the overlap + 0.5
    assert GuidelineVersion.objects.get(project=project).version == 1


def test_create_project_accepts_one_label_per_line_with_commas_inside(client, outsider):
    client.force_login(outsider)
    client.post(
        url("project-create"),
        {"name": "Places", "task_type": TaskType.MULTI_LABEL, "labels": "Paris, France\nLyon, France\n",
         "overlap": 2, "lease_seconds": 900},
    )
    assert [lb.name for lb in Label.objects.filter(project__name="Places")] == ["Paris, France", "Lyon, France"]


def test_create_project_refuses_bad_input_and_writes_nothing(client, outsider):
    client.force_login(outsider)
    twice = client.post(
        url("project-create"),
        {"name": "X", "task_type": TaskType.SINGLE_LABEL, "labels": "a, b, A", "overlap": 2, "lease_seconds": 900},
    )
    assert twice.status_code == 400
    assert escape(LABEL_LISTED_TWICE.format(name="A")) in twice.content.decode()
    instruction_with_labels = client.post(
        url("project-create"),
        {"name": "Y", "task_type": TaskType.INSTRUCTION, "labels": "a, b", "overlap": 2, "lease_seconds": 900},
    )
    assert instruction_with_labels.status_code == 400
    assert "Instruction projects have no labels" in instruction_with_labels.content.decode()
    assert not Project.objects.exists()


def test_project_detail_shows_progress_labels_and_owner_links(client, project, owner, annotator):
    acknowledge_guidelines(project, annotator)
    item = held_item(annotator, project)
    svc.annotation_submit(annotator=annotator, item=item, value={"label": "positive"}, label_names=LABELS)
    client.force_login(owner)
    page = client.get(url("project-detail", project.pk)).content.decode()
    assert "Start annotating" in page and url("project-settings", project.pk) in page
    assert all(name in page for name in LABELS)
    assert "<strong>5</strong>" in page  # items
    assert "<strong>1</strong>" in page  # in annotation (one of two annotations done)
    routing = "fixed routing" if not project.routes_adaptively else f"adaptive routing, {project.routing_budget:g}"
    assert f'<span id="routing-summary">{routing}' in page  # the header says how items are routed


def test_project_detail_links_the_import_page_for_the_owner_only(client, project, owner, annotator):
    import_url = reverse("import-page", args=[project.pk])
    client.force_login(owner)
    assert import_url in client.get(url("project-detail", project.pk)).content.decode()
    client.force_login(annotator)
    assert import_url not in client.get(url("project-detail", project.pk)).content.decode()


def test_project_detail_hides_settings_and_annotate_from_a_reviewer(client, project, reviewer):
    client.force_login(reviewer)
    page = client.get(url("project-detail", project.pk)).content.decode()
    assert url("project-settings", project.pk) not in page
    assert url("annotate", project.pk) not in page


def test_settings_change_overlap_and_lease(client, project, owner):
    client.force_login(owner)
    response = client.post(
        url("project-settings", project.pk), {"overlap": 3, "lease_seconds": 120, "routing_budget": 3.5}
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.overlap, project.lease_seconds, project.routing_budget) == (3, 120, 3.5)
    bad = client.post(url("project-settings", project.pk), {"overlap": 0, "lease_seconds": 5})
    assert bad.status_code == 400
    project.refresh_from_db()
    assert (project.overlap, project.lease_seconds) == (3, 120)


def test_an_emptied_routing_box_is_named_and_changes_nothing(client, project, owner):
    """A tester emptied Budget and Audit rate and got "Settings saved." with both kept: it read as a reset."""
    from html import unescape

    from annotation.projects.forms import ProjectSettingsForm

    client.force_login(owner)
    before = (project.overlap, project.routing_budget, project.audit_rate)
    post = {"overlap": 2, "lease_seconds": 120, "routing_policy": "adaptive", "routing_budget": " ", "audit_rate": ""}
    refused = client.post(url("project-settings", project.pk), post)
    assert refused.status_code == 400
    assert Project.objects.get(pk=project.pk).lease_seconds != 120
    page = unescape(refused.content.decode())
    assert all(message in page for message in ProjectSettingsForm.EMPTIED.values())
    project.refresh_from_db()
    assert (project.overlap, project.routing_budget, project.audit_rate) == before
    # left out of the post altogether (an older client), they stay as they are
    kept = client.post(url("project-settings", project.pk), {"overlap": 2, "lease_seconds": 120})
    assert kept.status_code == 302
    project.refresh_from_db()
    assert (project.lease_seconds, project.overlap, project.routing_budget, project.audit_rate) == (120, *before)


def test_an_overlap_over_the_adaptive_budget_is_refused_and_changes_nothing(client, project, owner):
    """Every item gets `overlap` annotators before adaptive routing weighs it: a budget under that could never be
    kept, so the page refuses it (naming the budget) and saves none of the post's settings."""
    from annotation.projects.services import BUDGET_UNDER_OVERLAP

    assert project.routes_adaptively and (project.overlap, project.routing_budget) == (2, 2.5)
    client.force_login(owner)
    refused = client.post(url("project-settings", project.pk), {"overlap": 3, "lease_seconds": 120})
    assert refused.status_code == 400
    assert BUDGET_UNDER_OVERLAP.format(overlap=3, budget=2.5).split(":")[0] in refused.content.decode()
    project.refresh_from_db()
    assert (project.overlap, project.lease_seconds) == (2, 900)
    api = api_as(owner)
    low = api.patch(f"/api/projects/{project.pk}/", {"routing_budget": 1}, format="json")
    assert low.status_code == 400 and low.json()["field"] == "routing_budget"
    assert "budget of 1 (judgements per item)" in low.json()["detail"]
    both = api.patch(f"/api/projects/{project.pk}/", {"overlap": 3, "routing_budget": 3}, format="json")
    assert both.status_code == 200 and (both.json()["overlap"], both.json()["routing_budget"]) == (3, 3.0)
    fixed = api.patch(f"/api/projects/{project.pk}/", {"routing_policy": "fixed", "routing_budget": 1}, format="json")
    assert fixed.status_code == 200  # fixed routing has no budget to keep
    # A project made before the rule (adaptive, overlap over its budget) still changes its other settings.
    Project.objects.filter(pk=project.pk).update(routing_policy="adaptive", overlap=3, routing_budget=2.5)
    lease = api.patch(f"/api/projects/{project.pk}/", {"lease_seconds": 600}, format="json")
    assert lease.status_code == 200 and lease.json()["lease_seconds"] == 600
    form = client.post(url("project-settings", project.pk), {"overlap": 3, "lease_seconds": 120, "routing_budget": 2.5})
    assert form.status_code == 302
    assert api.patch(f"/api/projects/{project.pk}/", {"overlap": 4}, format="json").status_code == 400


def test_a_new_project_with_a_higher_overlap_gets_a_budget_that_covers_it(owner):
    from annotation.projects.services import project_create

    created = project_create(owner=owner, name="Five", labels=["a", "b"], overlap=5)
    assert created.routes_adaptively and created.routing_budget == 5.5
    assert project_create(owner=owner, name="Two", labels=["a", "b"]).routing_budget == 2.5
    api = api_as(owner)
    body = {"name": "Three", "task_type": "single_label", "labels": ["a", "b"], "overlap": 3}
    made = api.post("/api/projects/", body, format="json")  # the docs' default: a tester got a 400 here
    assert made.status_code == 201 and made.json()["routing_budget"] == 3.5
    most = api.post("/api/projects/", {**body, "name": "Twenty", "overlap": 20}, format="json")
    assert most.status_code == 201 and most.json()["routing_budget"] == 20.0  # capped at the budget's maximum
    low = api.post("/api/projects/", {**body, "name": "Low", "routing_budget": 2}, format="json")
    assert low.status_code == 400 and low.json()["field"] == "routing_budget"


def test_settings_add_and_edit_labels(client, project, owner):
    client.force_login(owner)
    added = client.post(
        url("label-create", project.pk), {"new-name": "mixed", "new-color": "#123456", "new-hotkey": "4"}
    )
    assert added.status_code == 302
    mixed = Label.objects.get(project=project, name="mixed")
    assert (mixed.color, mixed.hotkey) == ("#123456", "4")
    prefix = f"label-{mixed.pk}"
    edited = client.post(
        url("label-update", project.pk, mixed.pk),
        {f"{prefix}-name": "mixed feelings", f"{prefix}-color": "#abcdef", f"{prefix}-hotkey": "m"},
    )
    assert edited.status_code == 302
    mixed.refresh_from_db()
    assert (mixed.name, mixed.color, mixed.hotkey) == ("mixed feelings", "#abcdef", "m")


def test_settings_refuse_reserved_and_taken_hotkeys(client, project, owner):
    client.force_login(owner)
    reserved = client.post(url("label-create", project.pk), {"new-name": "spam", "new-hotkey": "s"})
    assert reserved.status_code == 400 and escape(HOTKEY_RESERVED) in reserved.content.decode()
    taken = client.post(url("label-create", project.pk), {"new-name": "other", "new-hotkey": "1"})
    assert taken.status_code == 400 and "already exists" in taken.content.decode()
    assert not Label.objects.filter(project=project, name__in=["spam", "other"]).exists()


def test_labels_cannot_be_renamed_once_annotated(client, project, owner, annotator):
    acknowledge_guidelines(project, annotator)
    item = held_item(annotator, project)
    svc.annotation_submit(annotator=annotator, item=item, value={"label": "positive"}, label_names=LABELS)
    label = Label.objects.get(project=project, name="positive")
    client.force_login(owner)
    prefix = f"label-{label.pk}"
    response = client.post(
        url("label-update", project.pk, label.pk),
        {f"{prefix}-name": "good", f"{prefix}-color": "#00aa00", f"{prefix}-hotkey": "1"},
    )
    assert response.status_code == 400 and LABEL_RENAME_IN_USE in response.content.decode()
    label.refresh_from_db()
    assert label.name == "positive"


def test_settings_add_member_and_keep_an_owner(client, project, owner, outsider):
    client.force_login(owner)
    assert client.post(url("member-set", project.pk), {"username": "outsider", "role": "annotator"}).status_code == 302
    assert Membership.objects.get(project=project, user=outsider).role == Role.ANNOTATOR
    unknown = client.post(url("member-set", project.pk), {"username": "nobody", "role": "annotator"})
    assert unknown.status_code == 400 and MEMBER_UNKNOWN.format(username="nobody") in unknown.content.decode()
    demote = client.post(url("member-set", project.pk), {"username": "owner", "role": "annotator"})
    assert demote.status_code == 400 and LAST_OWNER in demote.content.decode()
    assert Membership.objects.get(project=project, user=owner).role == Role.OWNER


# --- Guidelines ----------------------------------------------------------------------------------

XSS_BODY = """# Rules

<script>alert("owned")</script>
<img src="x" onerror="alert('img')">
[click me](javascript:alert('link'))
<a href="#" onclick="steal()">hover</a>

Keep **this** text.
"""


class _ActiveContent(HTMLParser):
    """Collects what a browser would run: inline scripts, on* handlers and javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            if name in ("href", "src") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")
        self._in_script = tag == "script" and not dict(attrs).get("src")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append(f"inline script {data.strip()[:40]!r}")


def _assert_no_script(html: str) -> None:
    parser = _ActiveContent()
    parser.feed(html)
    assert parser.found == []


def test_guidelines_are_rendered_without_any_script(client, project, owner, annotator):
    guideline_publish(project=project, author=owner, body=XSS_BODY)
    client.force_login(owner)
    page = client.get(url("guideline-detail", project.pk)).content.decode()
    assert "<strong>this</strong>" in page
    _assert_no_script(page)
    # The same body reaches annotators in the acknowledgement panel and beside the item.
    client.force_login(annotator)
    ack_page = client.get(url("annotate", project.pk)).content.decode()
    assert "I have read version 2" in ack_page
    _assert_no_script(ack_page)
    acknowledge_guidelines(project, annotator)
    work_page = client.get(url("annotate", project.pk)).content.decode()
    assert 'id="guide-panel"' in work_page and "<strong>this</strong>" in work_page
    _assert_no_script(work_page)


def test_publish_previews_the_diff_before_publishing(client, project, owner):
    client.force_login(owner)
    new_body = "# Sentiment\n\nPick the feeling the *writer* expresses.\nSarcasm counts as negative."
    preview = client.post(url("guideline-publish", project.pk), {"body": new_body, "action": "preview"})
    page = preview.content.decode()
    assert preview.status_code == 200
    assert '<pre class="added">' in page and "Sarcasm counts as negative." in page
    assert "Publish version 2" in page and body_digest(new_body) in page
    assert GuidelineVersion.objects.filter(project=project).count() == 1  # a preview publishes nothing

    published = client.post(
        url("guideline-publish", project.pk),
        {"body": new_body, "change_note": "sarcasm", "previewed": body_digest(new_body), "action": "publish"},
    )
    assert published.status_code == 302
    latest = GuidelineVersion.objects.filter(project=project).order_by("-version").first()
    assert (latest.version, latest.change_note) == (2, "sarcasm")


def test_publish_refuses_text_that_was_not_previewed(client, project, owner):
    client.force_login(owner)
    response = client.post(
        url("guideline-publish", project.pk),
        {"body": "Something else entirely", "previewed": body_digest("what was previewed"), "action": "publish"},
    )
    assert response.status_code == 200 and PREVIEW_STALE in response.content.decode()
    assert GuidelineVersion.objects.filter(project=project).count() == 1


def test_guideline_history_shows_every_version_and_its_changes(client, project, owner):
    guideline_publish(project=project, author=owner, body="Version two text", change_note="rewrite")
    client.force_login(owner)
    page = client.get(url("guideline-detail", project.pk) + "?v=1").content.decode()
    assert "Version 1" in page and "Version 2" in page and "older version" in page
    latest = client.get(url("guideline-detail", project.pk)).content.decode()
    assert "Changes from version 1" in latest and "rewrite" in latest


def test_annotator_acknowledges_a_new_version_seeing_the_diff_first(client, project, owner, annotator):
    acknowledge_guidelines(project, annotator)
    v2 = guideline_publish(
        project=project, author=owner, body="# Sentiment\n\nIrony flips the label.", change_note="irony"
    )
    client.force_login(annotator)
    page = client.get(url("annotate", project.pk)).content.decode()
    assert "The guidelines changed: version 2" in page
    assert "Changes since version 1" in page and "Irony flips the label." in page
    assert 'id="annotate-form"' not in page  # no item until acknowledged
    response = client.post(url("guideline-ack", project.pk), {"version": v2.pk, "next": url("annotate", project.pk)})
    assert response.status_code == 302 and response["Location"] == url("annotate", project.pk)
    assert GuidelineAcknowledgement.objects.filter(guideline_version=v2, user=annotator).exists()
    assert 'id="annotate-form"' in client.get(url("annotate", project.pk)).content.decode()


def test_first_acknowledgement_shows_the_full_text(client, project, annotator):
    client.force_login(annotator)
    page = client.get(url("annotate", project.pk)).content.decode()
    assert "Read the guidelines before you start" in page and "<em>writer</em>" in page


def test_guideline_page_asks_annotators_not_reviewers_to_acknowledge(client, project, annotator, reviewer):
    client.force_login(annotator)
    assert "I have read version 1" in client.get(url("guideline-detail", project.pk)).content.decode()
    client.force_login(reviewer)
    page = client.get(url("guideline-detail", project.pk)).content.decode()
    assert "I have read version" not in page and "<em>writer</em>" in page


def test_acknowledge_ignores_a_redirect_to_another_site(client, project, annotator):
    client.force_login(annotator)
    version = GuidelineVersion.objects.get(project=project)
    response = client.post(url("guideline-ack", project.pk), {"version": version.pk, "next": "https://evil.example/"})
    assert response["Location"] == url("annotate", project.pk)


def test_slash_projects_leads_to_the_project_list(client, project, owner):
    client.force_login(owner)
    response = client.get("/projects/")
    assert response.status_code == 302 and response["Location"] == reverse("project-list")
    assert project.name in client.get("/projects/", follow=True).content.decode()
