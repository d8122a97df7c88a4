"""Form helpers every area uses."""

from __future__ import annotations

from django import forms

from core.errors import ServiceError


def add_service_error(form: forms.Form, error: ServiceError) -> None:
    """Show a service's refusal next to the field it names, or above the form when the form has no such field."""
    form.add_error(error.field if error.field in form.fields else None, error.message)
