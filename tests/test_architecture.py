"""The architecture, read from the source (ast): one writer per table, and which module may import which.

- Nothing outside annotation/ writes annotation's tables: no create/update/delete/bulk_*/save/get_or_create/
  update_or_create on an annotation model (through its manager, or on an instance known to be one), and no
  raw SQL naming an annotation_ table. Other apps call annotation's services instead.
- No app imports another app's `views` module or its underscore-private names.
- No `apis` module imports a `views` module: a page and an API share services and selectors, not each other.

Migrations are history, not code paths; tests and bench/ are out of scope.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
APPS = ("annotation", "training", "core")
WRITES = frozenset(
    {"create", "update", "delete", "bulk_create", "bulk_update", "get_or_create", "update_or_create", "save"}
)
RAW_WRITE = re.compile(r"\b(update|insert\s+into|delete\s+from)\b", re.IGNORECASE)


def _modules(*packages: str) -> Iterator[tuple[str, Path, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            yield package, path, ast.parse(path.read_text(), filename=str(path))


def _annotation_models() -> tuple[set[str], set[str]]:
    models = list(apps.get_app_config("annotation").get_models())
    return {m.__name__ for m in models}, {m._meta.db_table for m in models}


def _root_name(node: ast.AST) -> str | None:
    """The name a call/attribute chain starts from: `Item` in `Item.objects.filter(...).update(...)`."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _imported_models(tree: ast.Module, model_names: set[str]) -> dict[str, str]:
    """Local name → annotation model, for names imported from annotation.models (aliases included)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("annotation.models"):
            for alias in node.names:
                if alias.name in model_names:
                    found[alias.asname or alias.name] = alias.name
    return found


def _instances(tree: ast.Module, models: dict[str, str]) -> set[str]:
    """Variables known to hold an annotation model: assigned from one's constructor or manager, or typed as one."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _root_name(node.value) in models:
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.arg) and node.annotation is not None:
            annotation = node.annotation
            if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
                typed = annotation.value.split("|")[0].strip()
            else:
                typed = annotation.id if isinstance(annotation, ast.Name) else None
            if typed in models:
                names.add(node.arg)
    return names


def annotation_writes(tree: ast.Module, model_names: set[str], tables: set[str]) -> list[str]:
    """Every place the module writes an annotation table, as 'line: what'."""
    models = _imported_models(tree, model_names)
    instances = _instances(tree, models)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
            root = _root_name(node.func.value)
            through_manager = root in models and node.func.attr != "save"
            on_instance = root in instances and isinstance(node.func.value, ast.Name | ast.Call)
            if through_manager or on_instance:
                found.append(f"{node.lineno}: {root}….{node.func.attr}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_WRITE.search(node.value):
            named = [t for t in tables if re.search(rf"\b{t}\b", node.value)]
            if named:
                found.append(f"{node.lineno}: raw SQL on {', '.join(named)}")
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            formatted = [_root_name(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]
            if RAW_WRITE.search(text) and any(name in models for name in formatted):
                found.append(f"{node.lineno}: raw SQL on an annotation model's table")
    return found


def import_violations(app: str, path: Path, tree: ast.Module) -> list[str]:
    """Another app's views or private names imported; a views module imported from an apis module."""
    is_apis = path.stem == "apis"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [(alias.name, "") for alias in node.names]
        else:
            continue
        for module, name in targets:
            parts = module.split(".")
            other_app = parts[0] in APPS and parts[0] != app
            views = "views" in parts or name == "views"
            if other_app and views:
                found.append(f"{node.lineno}: imports {module}{'.' + name if name else ''} (another app's views)")
            elif other_app and (name.startswith("_") or any(p.startswith("_") for p in parts[1:])):
                found.append(f"{node.lineno}: imports {module}.{name} (another app's private name)")
            elif is_apis and views and parts[0] in APPS:
                found.append(f"{node.lineno}: imports {module}{'.' + name if name else ''} (an apis module a views)")
    return found


@pytest.mark.parametrize("package", ["training", "core", "config"])
def test_nothing_outside_annotation_writes_annotation_tables(package):
    model_names, tables = _annotation_models()
    problems = [
        f"{path.relative_to(ROOT)}:{problem}"
        for _, path, tree in _modules(package)
        for problem in annotation_writes(tree, model_names, tables)
    ]
    assert not problems, "call annotation's services instead:\n" + "\n".join(problems)


def test_no_app_imports_another_apps_views_or_private_names_and_no_api_imports_a_view():
    problems = [
        f"{path.relative_to(ROOT)}:{problem}"
        for app, path, tree in _modules(*APPS)
        for problem in import_violations(app, path, tree)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from annotation.models import Item\nItem.objects.filter(pk=1).update(status='x')", 1),
        ("from annotation.models import Decision as D\nD.objects.create(value={})", 1),
        ("from annotation.models import Item\ndef f(item: Item) -> None:\n    item.save()", 1),
        ("from annotation.models import Item\nsql = f'UPDATE {Item._meta.db_table} SET x = 1'", 1),
        ("sql = 'DELETE FROM annotation_item WHERE id = 1'", 1),
        ("from annotation.models import Item\nItem.objects.filter(pk=1).count()", 0),
        ("from training.models import Round\nRound.objects.create(number=1)", 0),
    ],
)
def test_the_write_scan_finds_what_it_must(source, expected, db):
    model_names, tables = _annotation_models()
    assert len(annotation_writes(ast.parse(source), model_names, tables)) == expected


@pytest.mark.parametrize(
    ("app", "stem", "source", "expected"),
    [
        ("training", "views", "from annotation.projects.views import settings_page", 1),
        ("training", "views", "from annotation.review.services import _close_task", 1),
        ("annotation", "apis", "from annotation.review.views import review_page", 1),
        ("annotation", "apis", "from annotation.review import views", 1),
        ("training", "views", "from annotation.review.services import review_decide", 0),
        ("annotation", "views", "from annotation.review.views import review_page", 0),
    ],
)
def test_the_import_scan_finds_what_it_must(app, stem, source, expected):
    assert len(import_violations(app, Path(f"{app}/x/{stem}.py"), ast.parse(source))) == expected
