"""Demo users, one per role at a few sites, for `make run`. Never loaded in production."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
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
        "pi.paris",
        "Léa",
        "Fontaine",
        "Investigator (PI), Paris: StORM-01 randomised",
        (("STORM-01-R", "Paris", Role.INVESTIGATOR, False),),
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


# Eligible screening data per seed trial (each trial's computed criteria are satisfied).
_LABS = (
    ("anc", "2100", "/uL", None),
    ("platelets", "180000", "/uL", None),
    ("haemoglobin", "12.5", "g/dL", None),
    ("creatinine", "78", "umol/L", "104"),
    ("bilirubin", "9", "umol/L", "21"),
    ("ast", "25", "U/L", "40"),
    ("alt", "28", "U/L", "41"),
)
# Path of the demo patients at each site: (final status, off-study reason)
_PATHS = (
    ("screening", ""),
    ("screen_failure", ""),
    ("enrolled", ""),
    ("on_treatment", ""),
    ("follow_up", ""),
    ("off_study", "completed"),
)


def _screen_demo(study_site: StudySite, n: int, by) -> Patient:
    from patients import services
    from patients.models import ScreeningLab, ScreeningLesion

    today = timezone.localdate()
    patient = services.patient_screen(
        study_site=study_site,
        by=by,
        screening_number=f"SCR-{n:03d}",
        screened_on=today - timedelta(days=40 - n),
        sex="F" if n % 2 else "M",
        age_at_consent=52 + 3 * n,
    )
    facts = patient.facts
    facts.ecog, facts.current_line, facts.prior_lines = n % 2, 1, 1
    facts.liver_metastases, facts.childbearing_potential = False, False
    facts.restaging_on = today - timedelta(days=30)
    facts.planned_treatment_start = today + timedelta(days=5)
    facts.save()
    for organ, diameter in (("lung", "21"), ("liver", "17")):
        ScreeningLesion.objects.create(patient=patient, organ=organ, diameter_mm=Decimal(diameter))
    if study_site.study.code == "STEREOSARC":
        for analyte, value, unit, uln in _LABS:
            ScreeningLab.objects.create(
                patient=patient,
                analyte=analyte,
                value=Decimal(value),
                unit=unit,
                uln=Decimal(uln) if uln else None,
                sampled_on=today - timedelta(days=3),
            )
    return patient


def _walk_demo(patient: Patient, final: str, off_reason: str, by) -> None:
    from patients import services

    if final == "screening":
        return
    checks = services.eligibility_checks(patient)
    answers = {c.criterion.pk: c.outcome != "not_met" for c in checks}
    if final == "screen_failure":
        answered = [c for c in checks if not c.outcome]  # answered by the investigator only
        if not answered:
            services.patient_change_status(
                patient=patient,
                new_status="screen_failure",
                on=timezone.localdate(),
                by=by,
                reason="Demo",
            )
            return
        answers[answered[0].criterion.pk] = False
    services.eligibility_answer(patient=patient, answers=answers, by=by)
    if final == "screen_failure":
        return
    services.consent_record(
        patient=patient, consented_on=timezone.localdate(), form_version="v1.0", by=by
    )
    strata = {f.name: f.level_list[0] for f in patient.study_site.study.strat_factors.all()}
    services.patient_enrol(patient=patient, by=by, strata=strata)
    patient.refresh_from_db()
    for step in ("on_treatment", "follow_up", "off_study"):
        if patient.status == final:
            break
        services.patient_change_status(
            patient=patient,
            new_status=step,
            on=timezone.localdate(),
            by=by,
            reason="Demo",
            off_study_reason=off_reason if step == "off_study" else "",
        )


# Demo tumour courses (sum change at the two follow-up scans, %), cycled over patients.
_COURSES = ((-35, -40), (-10, 15), (5, 30), (-31, -28))


def _demo_imaging(patient: Patient, n: int, by) -> None:
    """A baseline and two follow-up scans, through the lesion services (responses computed)."""
    from lesions import services as lesion_services

    today = timezone.localdate()
    rows = [
        lesion_services.LesionRow(
            "T1",
            "lung",
            False,
            "target",
            Decimal("24"),
            status_at_inclusion="progressing",
            planned_for_sbrt=True,
        ),
        lesion_services.LesionRow(
            "T2",
            "liver",
            False,
            "target",
            Decimal("18"),
            status_at_inclusion="progressing",
            planned_for_sbrt=True,
        ),
        lesion_services.LesionRow(
            "NT1", "bone", False, "non_target", None, status_at_inclusion="stable"
        ),
    ]
    lesion_services.baseline_record(
        patient=patient, scan_date=today - timedelta(days=100), modality="CT", rows=rows, by=by
    )
    lesions = {le.label: le.pk for le in patient.lesions.all()}
    for days_ago, change in zip((60, 10), _COURSES[n % len(_COURSES)], strict=True):
        factor = Decimal(100 + change) / 100
        lesion_services.assessment_record(
            patient=patient,
            by=by,
            scan_date=today - timedelta(days=days_ago),
            modality="CT",
            non_target_status="NON_CR_NON_PD",
            new_lesions="NO",
            measurements={
                lesions["T1"]: lesion_services.MeasurementRow(
                    "present", (Decimal(24) * factor).quantize(Decimal("0.1"))
                ),
                lesions["T2"]: lesion_services.MeasurementRow(
                    "present", (Decimal(18) * factor).quantize(Decimal("0.1"))
                ),
            },
        )


def load_demo_patients() -> int:
    """Patients in every status at each demo investigator's site, made through the services."""
    from studies.services import randomisation_list_generate

    User = get_user_model()
    statistician = User.objects.get(username="statistician.unblinded")
    created = 0
    sites = (
        StudySite.objects.filter(memberships__role=Role.INVESTIGATOR)
        .select_related("study", "site")
        .distinct()
        .order_by("study__code", "number")
    )
    for study_site in sites:
        study = study_site.study
        if study.is_randomised and not study.randomisation_lists.filter(is_active=True).exists():
            randomisation_list_generate(study=study, by=statistician, slots_per_stratum=60)
        if study_site.patients.exists():
            continue
        investigator = User.objects.filter(
            memberships__study_site=study_site, memberships__role=Role.INVESTIGATOR
        ).first()
        for n, (final, off_reason) in enumerate(_PATHS, start=1):
            with transaction.atomic():
                patient = _screen_demo(study_site, n, investigator)
                _walk_demo(patient, final, off_reason, investigator)
                patient.refresh_from_db()
                if patient.subject_id:
                    _demo_imaging(patient, n, investigator)
            created += 1
    return created
