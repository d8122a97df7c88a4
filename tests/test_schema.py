"""The OpenAPI schema of every API in the project: valid, and without a warning (names stay distinct)."""

import pytest
import yaml
from django.core.management import call_command


def test_the_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    operation_ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert "/api/projects/{project_id}/quality/" in schema["paths"]


@pytest.mark.parametrize("name", ["QualityApi", "SnapshotDownloadApi", "SnapshotCompareApi"])
def test_views_without_serializers_are_described(name, tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    operation = name.removesuffix("Api")
    snake = "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
    assert snake in [op["operationId"] for path in schema["paths"].values() for op in path.values()]


def test_no_endpoint_is_described_by_the_base_class_docstring(tmp_path):
    """A view without its own docstring inherits ApiView's, an internal note, as its description in /api/docs/."""
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    leaked = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, op in operations.items()
        if "Base of every API" in op.get("description", "")
    ]
    assert leaked == []


def test_deciding_a_closed_review_task_is_documented_as_a_409(tmp_path):
    """The decide endpoint answers 409 once another reviewer closed the task; a tester found the schema silent."""
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    decide = schema["paths"]["/api/projects/{project_id}/review-tasks/{task_id}/decide/"]["post"]
    assert "409" in decide["responses"]
