"""Demo users, one per role at a few sites, for `make run`. Never loaded in production."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from patients.models import Patient
from studies.audit import reason_for_change
from studies.models import Membership, Study, StudySite
from studies.roles import STAFF_ROLES, Role

DEMO_PASSWORD = "oligocrf-demo-2026"  # noqa: S105 - demo accounts only, printed by make run

# (study code, institution substring or None for all sites, role, blinded)
Access = tuple[str, str | None, str, bool]


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    description: str
    access: tuple[Access, ...]
    superuser: bool = False


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(
        "pi.caen",
        "Claire",
        "Martin",
        "Investigator (PI), Caen: StORM-01 and STEREOSARC",
        (
            ("STORM-01", "Baclesse", Role.INVESTIGATOR, False),
            ("STEREOSARC", "BACLESSE", Role.INVESTIGATOR, False),
        ),
    ),
    DemoUser(
        "nurse.caen",
        "Julien",
        "Petit",
        "Research nurse, Caen: StORM-01 and STEREOSARC",
        (
            ("STORM-01", "Baclesse", Role.SUBINVESTIGATOR, False),
            ("STEREOSARC", "BACLESSE", Role.SUBINVESTIGATOR, False),
        ),
    ),
    DemoUser(
        "pi.lille",
        "Hélène",
        "Dubois",
        "Investigator (PI), Lille: StORM-01 and STEREOSARC",
        (
            ("STORM-01", "Oscar Lambret", Role.INVESTIGATOR, False),
            ("STEREOSARC", "Oscar LAMBRET", Role.INVESTIGATOR, False),
        ),
    ),
    DemoUser(
        "pi.villejuif",
        "Marc",
        "Leroy",
        "Investigator (PI), Villejuif: ATRA trial, StORM-01",
        (
            ("ATRA-SBRT", "Gustave Roussy", Role.INVESTIGATOR, False),
            ("STORM-01", "Gustave Roussy", Role.INVESTIGATOR, False),
        ),
    ),
    DemoUser(
        "pi.stop2",
        "Emma",
        "Wilson",
        "Investigator (PI), STOP-2, blinded",
        (("STOP-2", "British Columbia", Role.INVESTIGATOR, True),),
    ),
    DemoUser(
        "planner.stop2",
        "Noah",
        "Chen",
        "Radiotherapy planner, STOP-2, unblinded (2FA)",
        (("STOP-2", "British Columbia", Role.PLANNER, False),),
    ),
    DemoUser(
        "monitor",
        "Sophie",
        "Bernard",
        "Monitor (CRA), all sites of every study, blinded",
        (
            ("STORM-01", None, Role.MONITOR, True),
            ("STEREOSARC", None, Role.MONITOR, True),
            ("ATRA-SBRT", None, Role.MONITOR, True),
            ("STOP-2", None, Role.MONITOR, True),
        ),
    ),
    DemoUser(
        "datamanager",
        "Lucas",
        "Moreau",
        "Data manager, every study, blinded",
        (
            ("STORM-01", None, Role.DATA_MANAGER, True),
            ("STORM-01-R", None, Role.DATA_MANAGER, True),
            ("STEREOSARC", None, Role.DATA_MANAGER, True),
            ("ATRA-SBRT", None, Role.DATA_MANAGER, True),
            ("STOP-2", None, Role.DATA_MANAGER, True),
        ),
    ),
    DemoUser(
        "sponsor",
        "Anne",
        "Lefèvre",
        "Sponsor administrator, every study (2FA)",
        (
            ("STORM-01", None, Role.SPONSOR_ADMIN, True),
            ("STORM-01-R", None, Role.SPONSOR_ADMIN, True),
            ("STEREOSARC", None, Role.SPONSOR_ADMIN, True),
            ("ATRA-SBRT", None, Role.SPONSOR_ADMIN, True),
            ("STOP-2", None, Role.SPONSOR_ADMIN, True),
        ),
    ),
    DemoUser(
        "statistician",
        "Paul",
        "Garnier",
        "Statistician, every study, blinded",
        (
            ("STEREOSARC", None, Role.STATISTICIAN, True),
            ("ATRA-SBRT", None, Role.STATISTICIAN, True),
            ("STOP-2", None, Role.STATISTICIAN, True),
        ),
    ),
    DemoUser(
        "statistician.unblinded",
        "Inès",
        "Roux",
        "Unblinded statistician, STOP-2 (2FA)",
        (("STOP-2", None, Role.STATISTICIAN, False),),
    ),
    DemoUser(
        "admin", "System", "Administrator", "Superuser: creates accounts (2FA)", (), superuser=True
    ),
)

# Demo TOTP secrets (hex), so that `manage.py totp_code USER` can print the current code.
_DEMO_TOTP_KEY = "3132333435363738393031323334353637383930"


def _study_site(study: Study, institution: str | None) -> StudySite | None:
    if institution is None:
        return None
    return StudySite.objects.get(study=study, site__institution__icontains=institution)


@transaction.atomic
def load_demo_users() -> list[DemoUser]:
    User = get_user_model()
    studies = {s.code: s for s in Study.objects.all()}
    with reason_for_change("Demo data for make run", command="load_demo_data"):
        for demo in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=demo.username,
                defaults={
                    "first_name": demo.first_name,
                    "last_name": demo.last_name,
                    "email": f"{demo.username}@demo.oligocrf.invalid",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
            user.is_superuser = user.is_staff = demo.superuser
            for code, institution, role, blinded in demo.access:
                study = studies[code]
                Membership.objects.get_or_create(
                    user=user,
                    study=study,
                    study_site=_study_site(study, institution),
                    role=role,
                    defaults={"blinded": blinded},
                )
                user.is_staff = user.is_staff or role in STAFF_ROLES
            user.save()
    return list(DEMO_USERS)


def ensure_demo_totp(username: str) -> TOTPDevice:
    user = get_user_model().objects.get(username=username)
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="demo", defaults={"key": _DEMO_TOTP_KEY, "confirmed": True}
    )
    return device


@transaction.atomic
def load_demo_patients(per_site: int = 3) -> int:
    """A few enrolled patients at the demo users' sites, so enrolment figures are not all zero."""
    created = 0
    sites = StudySite.objects.filter(memberships__role=Role.INVESTIGATOR).select_related("study")
    with reason_for_change("Demo data for make run", command="load_demo_data"):
        for study_site in sites.distinct():
            for n in range(1, per_site + 1):
                subject_id = f"{study_site.study.code.replace('-', '')}-{study_site.number}-{n:03d}"
                _, was_created = Patient.objects.get_or_create(
                    subject_id=subject_id,
                    defaults={
                        "study_site": study_site,
                        "status": Patient.Status.ENROLLED,
                        "enrolled_on": date(2026, 1, 5) + timedelta(days=30 * n),
                    },
                )
                created += was_created
    return created
