"""API tokens: the one key per user that scripts send as `Authorization: Token <key>` (DRF's Token)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token


def token_issue(*, user: AbstractBaseUser, rotate: bool = False) -> Token:
    """The user's token, created on first use; `rotate` replaces it, so the old key stops working at once."""
    with transaction.atomic():
        if rotate:
            Token.objects.filter(user=user).delete()
        token, _ = Token.objects.get_or_create(user=user)
    return token
