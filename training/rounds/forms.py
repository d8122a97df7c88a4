"""The next-round settings form (owners)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms

from annotation.models import QueueOrder

NO_CRITERIA = "Name at least one criterion to rate responses on."


DUPLICATE_CRITERIA = "Each criterion once."


CRITERION_MAX = 60


LONG_CRITERION = f"Keep each criterion under {CRITERION_MAX} characters."


class NextRoundSettingsForm(forms.Form):
    """How a model's outputs feed the next round; saved by annotation.projects.services.project_round_settings_set."""

    queue_order = forms.ChoiceField(choices=QueueOrder.choices, label="Queue order")
    random_share = forms.FloatField(
        min_value=0.0, max_value=1.0, label="Random share", help_text="0.2 puts a random item in every 5th slot."
    )
    disagreement_confidence = forms.FloatField(
        min_value=0.5,
        max_value=1.0,
        label="Disagreement confidence",
        help_text="A model this sure against a final label sends the item back to review.",
    )
    show_prelabels = forms.BooleanField(
        required=False,
        label="Show annotators pre-labels",
        help_text="Off by default: a suggestion biases blind labelling.",
    )
    show_model_confidence = forms.BooleanField(
        required=False,
        label="Show raters the model's confidence",
        help_text="Off by default: raters judge the output, not how sure the model was.",
    )
    rating_criteria = forms.CharField(
        required=False,
        label="Rating criteria",
        help_text="Generated responses are rated 1-5 on each; one per line or comma-separated.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, generates: bool = True, **kwargs: Any) -> None:
        """`generates`: the project's models write responses (instruction); a classifier's outputs are rated
        correct or wrong, never on criteria, so its form has none to offer."""
        super().__init__(*args, **kwargs)
        if not generates:
            del self.fields["rating_criteria"]

    def clean_rating_criteria(self) -> list[str]:
        raw = self.cleaned_data["rating_criteria"]
        try:
            return rating_criteria_clean(name for line in raw.splitlines() for name in line.split(","))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


def rating_criteria_clean(names: Iterable[str]) -> list[str]:
    """The criteria names trimmed, blanks dropped; ValueError with the message when none, repeated or too long.
    Shared by this form and the rounds settings API."""
    clean = [name.strip() for name in names if name.strip()]
    if not clean:
        raise ValueError(NO_CRITERIA)
    if len(set(clean)) != len(clean):
        raise ValueError(DUPLICATE_CRITERIA)
    if any(len(name) > CRITERION_MAX for name in clean):
        raise ValueError(LONG_CRITERION)
    return clean
