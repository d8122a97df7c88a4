"""The webhook form of the settings page: a URL, a note and the events, as checkboxes."""

from __future__ import annotations

from django import forms

from annotation.models import WebhookEvent
from annotation.webhooks.services import SUBSCRIBABLE


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="Payload URL",
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/labelloop", "autofocus": True}),
        help_text="http or https, on a public address.",
    )
    description = forms.CharField(label="Description", max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label="Events",
        choices=[(event, f"{WebhookEvent(event).label} ({event})") for event in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event."},
    )
