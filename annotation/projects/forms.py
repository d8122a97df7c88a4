"""Browser forms of projects: parse and shape what a person typed; the services decide whether it is allowed."""

from __future__ import annotations

import hashlib
from typing import Any

from django import forms

from annotation.models import (
    ROUTING_BUDGET_DEFAULT,
    ROUTING_BUDGET_HELP,
    ROUTING_POLICY_HELP,
    GoalMetric,
    Role,
    RoutingPolicy,
    TaskType,
)
from annotation.projects.services import EMAIL_WITHOUT_CREATE, LEASE_MAX_SECONDS, LEASE_MIN_SECONDS

PREVIEW_STALE = "The text changed after the preview: check the new diff, then publish."


def parse_label_names(raw: str) -> list[str]:
    """One label per line; a single line may list them separated by commas instead."""
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if len(lines) == 1:
        lines = [part.strip() for part in lines[0].split(",") if part.strip()]
    return lines


def body_digest(body: str) -> str:
    """Identifies the exact guideline text a preview showed, so publish can refuse text nobody previewed."""
    return hashlib.sha256(body.strip().encode("utf-8")).hexdigest()[:32]


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200, label="Project name")
    task_type = forms.ChoiceField(choices=TaskType.choices, initial=TaskType.SINGLE_LABEL, label="Task type")
    labels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "positive\nnegative\nneutral"}),
        help_text="One per line, or comma-separated on one line. Leave empty for instruction → response.",
    )
    overlap = forms.IntegerField(
        min_value=1,
        max_value=20,
        initial=2,
        label="Annotators per item (overlap)",
        help_text="How many annotators label each item, blind to each other.",
    )
    lease_seconds = forms.IntegerField(
        min_value=LEASE_MIN_SECONDS,
        max_value=LEASE_MAX_SECONDS,
        initial=900,
        label="Lease (seconds)",
        help_text="How long a claimed item stays reserved for its annotator.",
    )
    goal_metric = forms.ChoiceField(
        choices=[("", "Default for the task"), *GoalMetric.choices], required=False, label="Goal metric"
    )
    # Left out of a post (an older client, a script), the project gets the model's defaults.
    routing_policy = forms.ChoiceField(
        choices=RoutingPolicy.choices, initial=RoutingPolicy.ADAPTIVE, required=False, label="Routing",
        help_text=ROUTING_POLICY_HELP,
    )
    # Left empty, the service's default: ROUTING_BUDGET_DEFAULT, or the overlap + 0.5 where that is higher.
    routing_budget = forms.FloatField(
        min_value=1.0, max_value=20.0, required=False,
        label="Budget (judgements per item)", help_text=ROUTING_BUDGET_HELP,
        widget=forms.NumberInput(
            attrs={"placeholder": f"{ROUTING_BUDGET_DEFAULT:g}, or the overlap + 0.5", "step": "any"}
        ),
    )
    allow_overlapping_spans = forms.BooleanField(
        required=False,
        label="Spans may overlap",
        help_text="Span labelling only: allow nested or overlapping spans. Off: an overlapping span is refused.",
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Shown on the project's page."
    )
    guidelines = forms.CharField(
        required=False,
        label="Guidelines",
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}),
        help_text="Markdown. Published as version 1; annotators acknowledge it before their first item.",
    )

    def clean_labels(self) -> list[str]:
        return parse_label_names(self.cleaned_data["labels"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The page shows the box for span labelling only; ticked before switching task type, it means nothing.
        if cleaned.get("task_type") != TaskType.SPANS:
            cleaned["allow_overlapping_spans"] = False
        return cleaned


class ProjectSettingsForm(forms.Form):
    overlap = forms.IntegerField(
        min_value=1, max_value=20, label="Annotators per item (overlap)", help_text="Blind to each other."
    )
    lease_seconds = forms.IntegerField(
        min_value=LEASE_MIN_SECONDS, max_value=LEASE_MAX_SECONDS, label="Lease (seconds)"
    )
    # Left out of a post (an older client), the routing settings stay as they are.
    routing_policy = forms.ChoiceField(
        choices=RoutingPolicy.choices, required=False, label="Routing", help_text=ROUTING_POLICY_HELP
    )
    routing_budget = forms.FloatField(
        min_value=1.0, max_value=20.0, required=False, label="Budget (judgements per item)",
        help_text=ROUTING_BUDGET_HELP,
    )
    audit_rate = forms.FloatField(
        min_value=0.0, max_value=1.0, required=False, label="Audit rate",
        help_text="Share of agreed items still sent to a reviewer (0 to 1).",
    )
    # Span projects only (the page shows it there); unticked posts nothing, i.e. False.
    allow_overlapping_spans = forms.BooleanField(
        required=False,
        label="Spans may overlap",
        help_text=(
            "Ticked: nested or overlapping spans are allowed; unticked: an overlapping span is refused. Unticking "
            "is refused while any annotation, final label, pre-annotation or correction still holds overlapping spans."
        ),
    )
    slice_fields = forms.CharField(
        required=False,
        max_length=1100,
        label="Slice fields",
        widget=forms.TextInput(attrs={"placeholder": "source, length_band"}),
        help_text=(
            "Item metadata fields, comma-separated (at most 10), plus length_band for short/medium/long texts: "
            "every evaluation reports its figures per value of each. Empty: no per-slice figures."
        ),
    )

    def clean_slice_fields(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data["slice_fields"].split(",") if part.strip()]

    # Left out of a post, a routing number stays as it is (an older client); a box the page showed and the owner
    # emptied is a mistake to name: "Settings saved." with the old value kept read as a reset that did not happen.
    EMPTIED = {
        "routing_budget": "Enter a budget in judgements per item (1 to 20); an empty box does not reset it.",
        "audit_rate": "Enter an audit rate from 0 to 1 (0: no audits); an empty box does not reset it.",
    }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, message in self.EMPTIED.items():
            if name in self.data and not str(self.data.get(name, "")).strip():
                self.add_error(name, message)
        return cleaned


class LabelForm(forms.Form):
    name = forms.CharField(max_length=100, label="Label")
    color = forms.RegexField(
        label="Colour",
        regex=r"^#[0-9a-fA-F]{6}$",
        required=False,
        widget=forms.TextInput(attrs={"type": "color"}),
        error_messages={"invalid": "Use a hex colour such as #1f77b4."},
    )
    hotkey = forms.CharField(
        max_length=1, required=False, strip=True, label="Hotkey", help_text="One key: a digit or a letter."
    )


class MemberForm(forms.Form):
    """Add a member or change a role (the table's rows post username and role only, so `create` stays False)."""

    username = forms.CharField(max_length=150, label="Username")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR, label="Role")
    create = forms.BooleanField(
        required=False,
        label="Create this account",
        help_text=(
            "For someone without an account yet: they get a one-time password, shown once after you add them, "
            "and choose their own at first sign-in."
        ),
    )
    email = forms.EmailField(required=False, label="Email (optional)", help_text="Stored with the new account.")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("email") and not cleaned.get("create"):  # an email for an existing account would be dropped
            self.add_error("email", EMAIL_WITHOUT_CREATE)
        return cleaned



class GuidelinePublishForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 18, "class": "mono"}), strip=False, label="Guidelines")
    change_note = forms.CharField(
        max_length=300, required=False, label="What changed", help_text="Shown in the history and to annotators."
    )
    previewed = forms.CharField(required=False, widget=forms.HiddenInput)
