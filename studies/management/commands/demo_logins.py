from __future__ import annotations

from django.core.management.base import BaseCommand

from studies.demo import DEMO_PASSWORD, DEMO_USERS


class Command(BaseCommand):
    help = "Print the demo logins."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, url: str, **options) -> None:
        self.stdout.write(f"\nOligoCRF starting at {url}  (Ctrl-C stops it)\n")
        self.stdout.write(f"Demo logins, all with the password: {DEMO_PASSWORD}")
        for demo in DEMO_USERS:
            self.stdout.write(f"  {demo.username:<24} {demo.description}")
        self.stdout.write(
            "Accounts marked 2FA ask for a code: `.venv/bin/python manage.py totp_code USERNAME`"
            " prints it (demo only).\n"
        )
