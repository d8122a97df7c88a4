"""A new project routes adaptively unless its owner picks fixed: the create page, the API and the service agree,
the choice is explained where it is made, and migration 0013 changes only the default, never a stored row."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotation.models import (
    ROUTING_BUDGET_DEFAULT,
    ROUTING_BUDGET_HELP,
    ROUTING_POLICY_HELP,
    Item,
    Project,
    ReviewTask,
    RoutingPolicy,
    TaskType,
)
from annotation.projects.services import BAD_BUDGET, project_create
from core.errors import ServiceError
from tests.fixtures.api import api_as, url
from tests.fixtures.pages import url as page_url

BEFORE = ("annotation", "0012_span_projects")
AFTER = ("annotation", "0013_routing_adaptive_default")


def test_the_default_budget_is_two_and_a_half_judgements_per_item():
    assert ROUTING_BUDGET_DEFAULT == 2.5
    assert Project._meta.get_field("routing_policy").default == RoutingPolicy.ADAPTIVE


def test_a_project_made_by_the_service_without_routing_is_adaptive(owner):
    project = project_create(owner=owner, name="Plain", labels=["a", "b"])
    project.refresh_from_db()
    assert (project.routing_policy, project.routing_budget) == (RoutingPolicy.ADAPTIVE, ROUTING_BUDGET_DEFAULT)


def test_the_service_keeps_a_chosen_policy_and_names_a_bad_budget(owner):
    project = project_create(owner=owner, name="Old way", labels=["a", "b"], routing_policy=RoutingPolicy.FIXED)
    project.refresh_from_db()
    assert project.routing_policy == RoutingPolicy.FIXED
    with pytest.raises(ServiceError) as refused:
        project_create(owner=owner, name="Too much", labels=["a", "b"], routing_budget=40)
    assert (refused.value.message, refused.value.field) == (BAD_BUDGET, "routing_budget")
    assert not Project.objects.filter(name="Too much").exists()


# --- The create page ---------------------------------------------------------------------------------------

FORM = {
    "name": "Toxicity",
    "task_type": TaskType.SINGLE_LABEL,
    "labels": "toxic, fine",
    "overlap": 2,
    "lease_seconds": 600,
    "goal_metric": "",
}


def test_the_create_page_offers_adaptive_first_and_explains_both_and_the_budget(client, outsider):
    client.force_login(outsider)
    body = client.get(page_url("project-create")).content.decode()
    assert '<option value="adaptive" selected>' in body
    assert '<option value="fixed">' in body
    assert 'name="routing_budget"' in body and 'placeholder="2.5, or the overlap + 0.5"' in body  # empty: default
    assert ROUTING_POLICY_HELP.replace("'", "&#x27;") in body
    assert ROUTING_BUDGET_HELP in body


def test_a_project_created_on_the_page_without_a_policy_is_adaptive_with_the_default_budget(client, outsider):
    client.force_login(outsider)
    response = client.post(page_url("project-create"), FORM)  # an older form: no routing fields at all
    assert response.status_code == 302
    project = Project.objects.get(name="Toxicity")
    assert (project.routing_policy, project.routing_budget) == (RoutingPolicy.ADAPTIVE, ROUTING_BUDGET_DEFAULT)


def test_the_page_keeps_the_owners_choice(client, outsider):
    client.force_login(outsider)
    response = client.post(page_url("project-create"), {**FORM, "routing_policy": "fixed", "routing_budget": "3"})
    assert response.status_code == 302
    project = Project.objects.get(name="Toxicity")
    assert (project.routing_policy, project.routing_budget) == (RoutingPolicy.FIXED, 3.0)


def test_the_page_refuses_a_budget_out_of_range_and_writes_nothing(client, outsider):
    client.force_login(outsider)
    response = client.post(page_url("project-create"), {**FORM, "routing_budget": "0.5"})
    assert response.status_code == 400
    assert "greater than or equal to 1" in response.content.decode()
    assert not Project.objects.filter(name="Toxicity").exists()


# --- The API -----------------------------------------------------------------------------------------------


def test_a_project_created_by_api_without_a_policy_is_adaptive_with_the_default_budget(outsider):
    response = api_as(outsider).post(url("api-project-list"), {"name": "Topics", "labels": ["a", "b"]}, format="json")
    assert response.status_code == 201, response.data
    assert (response.data["routing_policy"], response.data["routing_budget"]) == ("adaptive", 2.5)
    project = Project.objects.get(pk=response.data["id"])
    assert (project.routing_policy, project.routing_budget) == (RoutingPolicy.ADAPTIVE, ROUTING_BUDGET_DEFAULT)


def test_the_api_creates_a_fixed_project_when_asked_and_refuses_an_unknown_policy(outsider):
    client = api_as(outsider)
    body = {"name": "Fixed", "labels": ["a", "b"], "routing_policy": "fixed", "routing_budget": 4}
    response = client.post(url("api-project-list"), body, format="json")
    assert response.status_code == 201, response.data
    assert (response.data["routing_policy"], response.data["routing_budget"]) == ("fixed", 4.0)
    refused = client.post(url("api-project-list"), {**body, "name": "Odd", "routing_policy": "vote"}, format="json")
    assert refused.status_code == 400
    assert "routing_policy" in str(refused.data)
    assert not Project.objects.filter(name="Odd").exists()


def test_the_api_takes_the_audit_rate_on_create_and_refuses_what_it_does_not_take(outsider):
    """Found by a tester: `audit_rate` on create was silently dropped (201, rate still 0.1), and JSON true/false
    passed as numbers (a budget of `true` became 1.0). Each refusal names the field and writes nothing."""
    client = api_as(outsider)
    body = {"name": "Audited", "labels": ["a", "b"], "audit_rate": 0.5}
    response = client.post(url("api-project-list"), body, format="json")
    assert response.status_code == 201, response.data
    assert response.data["audit_rate"] == 0.5 and Project.objects.get(name="Audited").audit_rate == 0.5
    for name, bad, field in [
        ("Unknown", {"audit": 0.5}, "audit"),
        ("Bool budget", {"routing_budget": True}, "routing_budget"),
        ("Bool rate", {"audit_rate": False}, "audit_rate"),
        ("Bool overlap", {"overlap": True}, "overlap"),
        ("Rate too high", {"audit_rate": 1.5}, "audit_rate"),
    ]:
        refused = client.post(url("api-project-list"), {"name": name, "labels": ["a", "b"], **bad}, format="json")
        assert refused.status_code == 400 and refused.data["field"] == field, (name, refused.data)
        assert not Project.objects.filter(name=name).exists()
    project = Project.objects.get(name="Audited")
    for bad, field in [({"routing_budget": True}, "routing_budget"), ({"audit_rate": False}, "audit_rate"),
                       ({"routing": "fixed"}, "routing")]:  # fmt: skip
        refused = client.patch(url("api-project-detail", project), bad, format="json")
        assert refused.status_code == 400 and refused.data["field"] == field, refused.data
    project.refresh_from_db()
    assert (project.audit_rate, project.routing_budget, project.routing_policy) == (0.5, 2.5, "adaptive")


def test_the_api_says_which_routing_is_in_force(outsider):
    """An instruction project keeps an "adaptive" setting (a new project's default) but routes fixed: the project
    and its routing plan say so (the plan said "adaptive" under "the routing policy in force now")."""
    client = api_as(outsider)
    made = client.post(url("api-project-list"), {"name": "Chat", "task_type": "instruction"}, format="json")
    assert made.status_code == 201, made.data
    assert (made.data["routing_policy"], made.data["routing_in_force"]) == ("adaptive", "fixed")
    project = Project.objects.get(pk=made.data["id"])
    assert client.get(url("api-routing-plan", project)).data["policy"] == "fixed"
    labelled = client.post(url("api-project-list"), {"name": "Topics", "labels": ["a", "b"]}, format="json")
    assert labelled.data["routing_in_force"] == "adaptive"
    topics = Project.objects.get(pk=labelled.data["id"])
    assert client.get(url("api-routing-plan", topics)).data["policy"] == "adaptive"


def test_a_list_refuses_a_bad_limit_or_offset_naming_it(outsider):
    client = api_as(outsider)
    for query, field in [("limit=abc", "limit"), ("limit=0", "limit"), ("limit=-1", "limit"),
                         ("offset=-5", "offset"), ("offset=abc", "offset")]:  # fmt: skip
        refused = client.get(url("api-project-list") + "?" + query)
        assert refused.status_code == 400 and refused.data["field"] == field, (query, refused.data)
    assert client.get(url("api-project-list") + "?limit=5000&offset=0").status_code == 200  # capped at 1000


def test_the_api_schema_explains_the_routing_choice(outsider):
    response = api_as(outsider).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schemas = json.loads(response.content)["components"]["schemas"]
    create = next(v for k, v in schemas.items() if k.startswith("ProjectListInput"))["properties"]
    assert create["routing_policy"]["default"] == "adaptive"
    assert "Left out: 2.5, or the overlap plus half a judgement" in create["routing_budget"]["description"]
    assert "Adaptive (the default; single-label tasks)" in create["routing_policy"]["description"]


# --- The migration -----------------------------------------------------------------------------------------


def migrate(target: tuple[str, str]):
    """Migrate to `target`; the apps (historical models) of that state."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_migration_0014_records_the_routing_of_open_tasks_and_the_blind_count_of_escalated_items(
    owner, latest_schema_after
):
    made = project_create(owner=owner, name="Routed", labels=["a", "b"], routing_budget=3.0)
    old_apps = migrate(AFTER)
    project = old_apps.get_model("annotation", "Project").objects.get(pk=made.pk)
    items = old_apps.get_model("annotation", "Item")
    escalated = items.objects.create(project=project, text="asked one more", content_hash="h1", extra_slots=1)
    plain = items.objects.create(project=project, text="agreed", content_hash="h2")
    tasks = old_apps.get_model("annotation", "ReviewTask")
    open_task = tasks.objects.create(project=project, item=escalated, reasons=["disagreement"])
    closed = tasks.objects.create(project=project, item=plain, reasons=["audit"], status="done")
    migrate(("annotation", "0014_routing_recorded"))
    assert ReviewTask.objects.get(pk=open_task.pk).routing == {"policy": "adaptive", "budget": 3.0, "review_all": False}
    assert ReviewTask.objects.get(pk=closed.pk).routing is None  # history: nothing to keep it for
    assert Item.objects.get(pk=escalated.pk).blind_count == 2 and Item.objects.get(pk=plain.pk).blind_count is None


@pytest.fixture
def latest_schema_after():
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_migration_changes_no_stored_policy(owner, latest_schema_after):
    chosen = project_create(owner=owner, name="Chose adaptive", labels=["a", "b"], routing_budget=3.5)
    old_apps = migrate(BEFORE)
    old_project = old_apps.get_model("annotation", "Project")
    assert old_project._meta.get_field("routing_policy").default == "fixed"
    before = old_project.objects.create(name="Made before 0013", created_by_id=owner.pk)  # 0012's default
    migrate(AFTER)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, routing_policy, routing_budget FROM annotation_project ORDER BY id")
        rows = {pk: (policy, budget) for pk, policy, budget in cursor.fetchall()}
    assert rows == {chosen.pk: ("adaptive", 3.5), before.pk: ("fixed", 2.5)}
    made_after = project_create(owner=owner, name="Made after 0013", labels=["a", "b"])
    assert Project.objects.get(pk=made_after.pk).routing_policy == RoutingPolicy.ADAPTIVE
