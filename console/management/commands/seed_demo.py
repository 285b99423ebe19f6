from django.core.management.base import BaseCommand

from console.context import acting_as
from console.demo import seed_demo


class Command(BaseCommand):
    help = "Create (or refresh) the demo customers, users in every role, feeds, alerts and tickets. Idempotent."

    def handle(self, *args, **options) -> None:
        with acting_as("seed_demo"):
            summary = seed_demo(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {summary['customers']} customers."))
        note = " (generated now; set DEMO_ADMIN_PASSWORD to choose one)" if summary["generated"] else ""
        self.stdout.write(f"Log in as admin / {summary['password']}{note}")
        self.stdout.write(
            "Other demo users (same password): vera (viewer), eli (engineer), sam and sofia (senior engineers),"
        )
        self.stdout.write("harbor-viewer (customer viewer of First Harbor Bank).")
        self.stdout.write(
            "With TWO_FACTOR_REQUIRED=1, sam, sofia and admin enrol an authenticator app through a link from "
            "`manage.py issue_enrolment_link <user>`."
        )
