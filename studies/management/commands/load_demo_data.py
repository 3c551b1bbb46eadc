from __future__ import annotations

import pghistory
from django.core.management.base import BaseCommand

from studies.demo import DEMO_USERS, ensure_demo_totp, load_demo_patients, load_demo_users
from studies.security import requires_two_factor


class Command(BaseCommand):
    help = "Create demo users (one per role, a few sites) and demo patients. Idempotent."

    def handle(self, *args, **options) -> None:
        load_demo_users()
        from django.contrib.auth import get_user_model

        for demo in DEMO_USERS:
            user = get_user_model().objects.get(username=demo.username)
            if requires_two_factor(user):
                ensure_demo_totp(demo.username)
        created = load_demo_patients()
        from patients.visit_services import study_visits_sync
        from studies.models import Study

        with pghistory.context(command="load_demo_data", reason="Plan the demo patients' visits"):
            for study in Study.objects.all():  # patients loaded before the schedules existed
                study_visits_sync(study)
        self.stdout.write(f"demo users: {len(DEMO_USERS)}; demo patients created: {created}")
