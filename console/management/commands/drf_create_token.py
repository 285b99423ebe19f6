"""Create an API key for a user, as DRF's command of the same name did (only its hash is stored)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from console.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for the given username and print it (it is shown only this once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="Command line", help="what the token is for, shown in the token list")

    def handle(self, *args, **options) -> None:
        username = options["username"]
        try:
            user = get_user_model()._default_manager.get_by_natural_key(username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"Cannot create the Token: user {username} does not exist") from exc
        issued = api_token_create(user=user, name=options["name"])
        self.stdout.write(f"Generated token {issued.key} for user {username}")
