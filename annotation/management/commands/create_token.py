"""Print a user's API token, creating it on first use: `manage.py create_token alice [--rotate]`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.projects.services import token_issue

NO_SUCH_USER = "No user named {username!r}."


class Command(BaseCommand):
    help = "Print the API token of a user (created if they have none); --rotate replaces it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true", help="Replace the token: the old key stops working.")

    def handle(self, *args: object, username: str, rotate: bool, **options: object) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(NO_SUCH_USER.format(username=username))
        self.stdout.write(token_issue(user=user, rotate=rotate).key)
