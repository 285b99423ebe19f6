"""Issue a user a single-use link to enrol an authenticator app (also how the first admin gets one)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from console.context import acting_as
from console.services import two_factor_enrolment_issue


class Command(BaseCommand):
    help = (
        "Print a single-use two-factor enrolment link for the given username (shown only this once). "
        "The user logs in with their password, opens the link and enrols an authenticator app."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--hours", type=int, default=None, help="how long the link works (default TWO_FACTOR_ENROLMENT_HOURS)"
        )

    def handle(self, *args, **options) -> None:
        username = options["username"]
        try:
            user = get_user_model()._default_manager.get_by_natural_key(username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"user {username} does not exist") from exc
        if options["hours"] is not None and options["hours"] < 1:
            raise CommandError("--hours must be at least 1")
        with acting_as("issue_enrolment_link"):
            issued = two_factor_enrolment_issue(user=user, hours=options["hours"])
        until = f"{issued.enrolment.expires_at:%Y-%m-%d %H:%M} UTC"
        self.stdout.write(f"Enrolment link for {username} (single use, until {until}):")
        self.stdout.write(issued.url)
