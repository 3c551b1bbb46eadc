"""A synthetic trial portfolio for scale tests and the benchmark (``manage.py generate_portfolio``).

Deterministic from a seed and a reference day: the same arguments give the same patients,
lesions, measurements, fractions, lines, adverse events, labs and visits. Rows are written with
bulk inserts; what the application computes is computed by its own engines, never made up:

- tumour responses by the RECIST 1.1 / iRECIST engines (:func:`lesions.services.recompute_many`),
- laboratory grades by the CTCAE v5.0 grader (:func:`patients.lab_services.grade_result`),
- planned visits by the visit schedule (:func:`patients.visit_services.visits_sync`).

Size L is a large multicentre portfolio: the five seed studies, 60 sites, 2,000 patients, about
10,000 lesions, 100,000 measurements, 50,000 SBRT fractions, 6,000 systemic lines, 40,000 adverse
events, 60,000 lab results, 20,000 planned visits and 2 million audit events. S is a tenth of L.

The audit history is written like the one the application writes (django-pghistory event rows
with a context naming the user and the reason): an insert event dated when the record was
entered, then corrections over the following weeks. Triggers are switched off for the session
while the generator writes (``session_replication_role = replica``, which needs a PostgreSQL
superuser, as on development and benchmark servers), so the history can carry its real dates.
Never run this on a production database.
"""

from __future__ import annotations

import random
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

# Bumped when the data generated change (the benchmark regenerates its databases then).
GENERATOR_VERSION = "2026.11.23-1"
BENCH_PASSWORD = "synthetic-portfolio-2026"  # noqa: S105 - synthetic accounts only
BENCH_STUDY = "STORM-01"
SITE_PREFIX = "Synthetic Cancer Centre"
DEFAULT_SEED = 20261123
BENCH_SITE_PATIENTS = 35


@dataclass(frozen=True)
class Size:
    name: str
    sites: int
    patients: int
    audit_events: int  # total wanted in the event tables of patient data

    @property
    def audit_per_patient(self) -> int:
        return self.audit_events // max(self.patients, 1)


SIZES = {
    "XS": Size("XS", 2, 12, 0),
    "S": Size("S", 6, 200, 200_000),
    "L": Size("L", 60, 2000, 2_000_000),
}


def custom_size(patients: int, sites: int, audit_events: int = 0) -> Size:
    return Size("custom", sites, patients, audit_events)


def bench_site():
    """The study site the benchmark measures: 35 patients at every size."""
    from studies.models import StudySite

    return (
        StudySite.objects.filter(study__code=BENCH_STUDY, site__institution__startswith=SITE_PREFIX)
        .select_related("study", "site")
        .order_by("number")
        .first()
    )


def bench_patient():
    """A patient of the bench site with a full record (scans, SBRT, lines, AEs, labs): the
    follow-up patient with the most adverse events (the same shape of record at every size)."""
    from django.db.models import Count

    from patients.models import Patient

    return (
        Patient.objects.filter(study_site=bench_site(), status="follow_up")
        .annotate(n=Count("adverse_events"))
        .order_by("-n", "enrolled_on", "pk")
        .first()
    )


# --- clinical vocabulary ----------------------------------------------------------------------

_ORGANS = ("lung", "lung", "liver", "liver", "adrenal", "soft tissue", "pleura", "pancreas")
_TECHNIQUES = ("truebeam", "cyberknife", "linac", "mr_linac", "tomotherapy")
_MOTION = ("none", "compression", "breath_hold", "gating", "tracking", "itv")
# (total Gy, fractions) of common SBRT schedules
_SCHEDULES = (
    (Decimal(30), 3),
    (Decimal(35), 5),
    (Decimal(40), 5),
    (Decimal(50), 5),
    (Decimal(48), 4),
    (Decimal(60), 8),
    (Decimal(50), 10),
)
_AE_TERMS = (
    "Fatigue",
    "Nausea",
    "Anorexia",
    "Cough",
    "Dyspnea",
    "Pneumonitis",
    "Dermatitis radiation",
    "Diarrhea",
    "Abdominal pain",
    "Back pain",
    "Chest wall pain",
    "Pain in extremity",
    "Hypertension",
    "Constipation",
    "Vomiting",
    "Lymphocyte count decreased",
    "Anemia",
    "Insomnia",
    "Arthralgia",
    "Rash maculo-papular",
)
_AGENTS_BY_STUDY = {
    "STORM-01": ("Sunitinib", "Pazopanib", "Cabozantinib", "Nivolumab", "Axitinib"),
    "STORM-01-R": ("Sunitinib", "Cabozantinib", "Nivolumab", "Axitinib", "Pembrolizumab"),
    "STEREOSARC": ("Doxorubicin", "Ifosfamide", "Trabectedin", "Pazopanib", "Gemcitabine"),
    "ATRA-SBRT": ("Pembrolizumab", "Nivolumab", "Carboplatin", "Paclitaxel", "Docetaxel"),
    "STOP-2": ("Docetaxel", "Enzalutamide", "Abiraterone", "Pembrolizumab", "Capecitabine"),
}
# analyte: (unit, LLN, ULN, mean before SBRT, sd)
_LABS = {
    "lymphocytes": ("10^9/L", Decimal("1.0"), Decimal("4.0"), 1.6, 0.5),
    "neutrophils": ("10^9/L", Decimal("1.8"), Decimal("7.5"), 4.0, 1.3),
    "platelets": ("10^9/L", Decimal("150"), Decimal("400"), 240, 60),
    "haemoglobin": ("g/dL", Decimal("12.0"), Decimal("16.0"), 12.8, 1.4),
    "creatinine": ("umol/L", Decimal("60"), Decimal("110"), 85, 18),
    "alt": ("U/L", Decimal("5"), Decimal("40"), 26, 10),
}
_REASONS = (
    "Transcription error corrected against the source document",
    "Query answered: value checked in the medical record",
    "Late entry of data from the radiology report",
    "Correction after source data verification",
    "Unit corrected (laboratory report)",
    "Date corrected from the clinic letter",
)


@contextmanager
def _triggers_off():
    """Inside a transaction: no row triggers (audit, locks, FK checks) until the block ends."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = origin")


class Generator:
    """Builds the portfolio; one instance per run (holds the random stream and created ids)."""

    def __init__(self, size: Size, seed: int = DEFAULT_SEED, today: date | None = None, log=None):
        self.size = size
        self.seed = seed
        self.rng = random.Random(seed)
        self.today = today or timezone.localdate()
        self.log = log or (lambda message: None)
        self.counts: dict[str, int] = {}

    # --- helpers ------------------------------------------------------------------------------

    def _d(self, value: float, places: str = "0.1") -> Decimal:
        return Decimal(str(value)).quantize(Decimal(places))

    def _bulk(self, model, rows: list, batch: int = 5000) -> list:
        created = model.objects.bulk_create(rows, batch_size=batch)
        self.counts[model._meta.label] = self.counts.get(model._meta.label, 0) + len(rows)
        return created

    # --- steps --------------------------------------------------------------------------------

    def run(self) -> dict[str, int]:
        from patients.models import Patient

        if Patient.objects.filter(study_site__site__institution__startswith=SITE_PREFIX).exists():
            raise RuntimeError("This database already holds a synthetic portfolio.")
        self._ensure_studies()
        with _triggers_off():
            self._sites_and_users()
            self._patients()
            self._clinical_data()
        self._derived()
        with _triggers_off():
            self._audit_history()
        return self.counts

    def _ensure_studies(self) -> None:
        from django.core.management import call_command

        from patients.ctcae_terms import ensure_terms
        from studies.models import Study

        ensure_terms()
        if Study.objects.count() < 5:
            call_command("load_seed_trials", verbosity=0)
        self.studies = list(Study.objects.order_by("pk").prefetch_related("arms"))
        self.studies.sort(key=lambda s: (s.code != BENCH_STUDY, s.pk))

    def _sites_and_users(self) -> None:
        from studies.models import Membership, Site, StudySite
        from studies.roles import Role

        User = get_user_model()
        password = User(username="x")
        password.set_password(BENCH_PASSWORD)
        hashed = password.password
        sites = self._bulk(
            Site,
            [
                Site(
                    institution=f"{SITE_PREFIX} {n:02d}",
                    city=self.rng.choice(("Lyon", "Lille", "Nantes", "Toronto", "Vancouver")),
                    country=self.rng.choice(("France", "Canada")),
                )
                for n in range(1, self.size.sites + 1)
            ],
        )
        study_sites = []
        for n, site in enumerate(sites):
            study = self.studies[n % len(self.studies)]
            study_sites.append(
                StudySite(
                    study=study,
                    site=site,
                    number=f"{70 + n // len(self.studies):02d}",
                    recruitment_status="recruiting",
                    activation_date=self.today - timedelta(days=1200),
                    principal_investigator=f"Dr Synthetic {n + 1:02d}",
                    target_enrolment=40,
                )
            )
        self.study_sites = self._bulk(StudySite, study_sites)
        users = [
            User(
                username=f"synth-pi-{ss.study.code.lower()}-{ss.number}",
                first_name="Site",
                last_name=f"Investigator {ss.number}",
                email=f"pi{ss.pk}@synthetic.oligocrf.invalid",
                password=hashed,
            )
            for ss in self.study_sites
        ]
        users.append(
            User(
                username="synth-investigator",
                first_name="Bench",
                last_name="Investigator",
                email="synth-investigator@synthetic.oligocrf.invalid",
                password=hashed,
            )
        )
        users.append(
            User(
                username="synth-dm",
                first_name="Bench",
                last_name="Data manager",
                email="synth-dm@synthetic.oligocrf.invalid",
                password=hashed,
                is_staff=True,
            )
        )
        users.append(
            User(
                username="synth-monitor",
                first_name="Bench",
                last_name="Monitor",
                email="synth-monitor@synthetic.oligocrf.invalid",
                password=hashed,
                is_staff=True,
            )
        )
        created = User.objects.bulk_create(users)
        self.site_users = {ss.pk: u for ss, u in zip(self.study_sites, created, strict=False)}
        bench_user, dm, monitor = created[-3:]
        self.users = created
        memberships = [
            Membership(
                user=self.site_users[ss.pk],
                study=ss.study,
                study_site=ss,
                role=Role.INVESTIGATOR,
                blinded=True,
            )
            for ss in self.study_sites
        ]
        bench = self.study_sites[0]
        memberships.append(
            Membership(
                user=bench_user,
                study=bench.study,
                study_site=bench,
                role=Role.INVESTIGATOR,
                blinded=True,
            )
        )
        for study in self.studies:
            memberships.append(
                Membership(user=dm, study=study, role=Role.DATA_MANAGER, blinded=True)
            )
            memberships.append(
                Membership(user=monitor, study=study, role=Role.MONITOR, blinded=True)
            )
        self._bulk(Membership, memberships)
        self._normal_ranges()

    def _normal_ranges(self) -> None:
        from patients.models_safety import NormalRange

        self.ranges = {}
        rows = []
        for ss in self.study_sites:
            for analyte, (unit, lln, uln, _mean, _sd) in _LABS.items():
                nr = NormalRange(study_site=ss, analyte=analyte, lln=lln, uln=uln, unit=unit)
                rows.append(nr)
                self.ranges[(ss.pk, analyte)] = nr
        self._bulk(NormalRange, rows)

    def _site_of_patients(self) -> list:
        """Study site of each patient: 35 at the bench site, the rest spread evenly."""
        others = self.study_sites[1:] or self.study_sites
        bench_n = min(BENCH_SITE_PATIENTS, self.size.patients // 2)
        rest = self.size.patients - bench_n
        return [self.study_sites[0]] * bench_n + [others[i % len(others)] for i in range(rest)]

    def _patients(self) -> None:
        from patients.models import (
            EligibilityFacts,
            Patient,
        )

        rng = self.rng
        plans, patients = [], []
        seq: dict[int, int] = {}
        for n, ss in enumerate(self._site_of_patients()):
            roll = rng.random()
            age_days = int(rng.triangular(20, 1400, 1150))
            if roll < 0.03:
                status, enrolled = "screening", None
            elif roll < 0.08:
                status, enrolled = "screen_failure", None
            elif age_days < 30:
                status, enrolled = "enrolled", self.today - timedelta(days=age_days)
            elif age_days < 150:
                status, enrolled = "on_treatment", self.today - timedelta(days=age_days)
            elif age_days > 700 and rng.random() < 0.35:
                status, enrolled = "off_study", self.today - timedelta(days=age_days)
            else:
                status, enrolled = "follow_up", self.today - timedelta(days=age_days)
            screened = (enrolled or self.today - timedelta(days=rng.randint(1, 60))) - timedelta(
                days=rng.randint(15, 30)
            )
            subject_id = None
            if enrolled:
                seq[ss.pk] = seq.get(ss.pk, 0) + 1
                subject_id = f"{ss.study.prefix}-{ss.number}-{seq[ss.pk]:03d}"
            age = rng.randint(38, 84)
            patients.append(
                Patient(
                    study_site=ss,
                    screening_number=f"S{ss.number}-{n + 1:05d}",
                    screened_on=screened,
                    screening_outcome="eligible"
                    if enrolled
                    else ("screen_failure" if status == "screen_failure" else "pending"),
                    subject_id=subject_id,
                    status=status,
                    status_changed_on=enrolled or screened,
                    sex=rng.choice("FM"),
                    year_of_birth=screened.year - age,
                    age_at_consent=age,
                    enrolled_on=enrolled,
                    off_study_reason=rng.choice(("completed", "death", "consent_withdrawn"))
                    if status == "off_study"
                    else "",
                )
            )
            plans.append(ss)
        self.patients = self._bulk(Patient, patients)
        self._bulk(
            EligibilityFacts,
            [
                EligibilityFacts(
                    patient=p,
                    ecog=rng.choice((0, 0, 1, 1, 2)),
                    current_line=1,
                    prior_lines=rng.randint(0, 2),
                    liver_metastases=rng.random() < 0.2,
                    restaging_on=p.screened_on - timedelta(days=7),
                    planned_treatment_start=(p.enrolled_on or p.screened_on) + timedelta(days=7),
                    childbearing_potential=False,
                )
                for p in self.patients
            ],
        )
        self.enrolled = [p for p in self.patients if p.enrolled_on]
        self._enrolment_records()
        self._allocations()

    def _enrolment_records(self) -> None:
        from patients.models import Consent, EligibilityAnswer

        criteria: dict[int, list] = {}
        for study in self.studies:
            criteria[study.pk] = list(study.criteria.all())
        answers, consents = [], []
        for p in self.enrolled:
            user = self.site_users[p.study_site_id]
            consents.append(
                Consent(
                    patient=p,
                    consented_on=p.enrolled_on - timedelta(days=12),
                    form_version="v2.1",
                    obtained_by=user,
                )
            )
            for criterion in criteria[p.study_site.study_id]:
                answers.append(
                    EligibilityAnswer(
                        patient=p, criterion=criterion, satisfied=True, answered_by=user
                    )
                )
        self._bulk(Consent, consents)
        self._bulk(EligibilityAnswer, answers)

    def _allocations(self) -> None:
        """Single-arm, run-in, then randomised by permuted blocks of the study's list."""
        from patients.models import Allocation
        from studies.models import AllocationSlot, RandomisationList

        rng = self.rng
        allocations, slots = [], []
        lists: dict[int, RandomisationList] = {}
        statistician = self.users[-2]
        by_study: dict[int, list] = {}
        for p in sorted(self.enrolled, key=lambda p: (p.enrolled_on, p.pk)):
            by_study.setdefault(p.study_site.study_id, []).append(p)
        for study in self.studies:
            arms = sorted(study.arms.all(), key=lambda a: a.code)
            members = by_study.get(study.pk, [])
            if study.design == study.Design.SINGLE_ARM:
                for p in members:
                    allocations.append(
                        Allocation(
                            patient=p,
                            arm=arms[0],
                            part="single_arm",
                            allocated_by=self.site_users[p.study_site_id],
                        )
                    )
                continue
            run_in = 0
            if study.design == study.Design.RUN_IN_RANDOMISED:
                run_in = study.run_in_size or 0
                run_arm = next(a for a in arms if a.code == study.run_in_arm_code)
                for p in members[:run_in]:
                    allocations.append(
                        Allocation(
                            patient=p,
                            arm=run_arm,
                            part="run_in",
                            allocated_by=self.site_users[p.study_site_id],
                        )
                    )
            rlist = study.randomisation_lists.filter(is_active=True).first()
            if rlist is None:
                rlist = RandomisationList.objects.create(
                    study=study,
                    seed=f"synthetic-{self.seed}",
                    created_by=statistician,
                    slots_per_stratum=len(members) + 4,
                )
            lists[study.pk] = rlist
            block: list = []
            for k, p in enumerate(members[run_in:]):
                if not block:
                    block = arms * 2
                    rng.shuffle(block)
                arm = block.pop()
                slot = AllocationSlot(
                    rlist=rlist,
                    stratum=f"synthetic:{p.study_site.number}",
                    sequence=k + 1,
                    arm=arm,
                    taken_at=timezone.now(),
                )
                slots.append(slot)
                allocations.append(
                    Allocation(
                        patient=p,
                        arm=arm,
                        slot=slot,
                        part="randomised",
                        stratum=slot.stratum,
                        allocated_by=self.site_users[p.study_site_id],
                    )
                )
        self._bulk(AllocationSlot, slots)
        for a in allocations:
            a.slot_id = a.slot.pk if a.slot else None
        self._bulk(Allocation, allocations)
        self.arm_of = {a.patient_id: a.arm for a in allocations}

    def _clinical_data(self) -> None:
        self._imaging()
        self._sbrt()
        self._lines()
        self._adverse_events()
        self._labs()

    # --- imaging: 5 target lesions, a baseline and up to 10 follow-ups every 8 weeks ----------

    def _imaging(self) -> None:
        from lesions.models import ImagingAssessment, Lesion, Measurement

        rng = self.rng
        lesions, scans, plan = [], [], []
        for p in self.enrolled:
            organs = rng.sample(_ORGANS, 5)
            kind = rng.choices(("response", "stable", "progression"), (0.35, 0.35, 0.30))[0]
            mine = [
                Lesion(
                    patient=p,
                    label=f"T{i + 1}",
                    organ=organ,
                    category="target",
                    status_at_inclusion="progressing" if i < 3 else "stable",
                    planned_for_sbrt=True,
                    location=f"{organ} lesion {i + 1}",
                )
                for i, organ in enumerate(organs)
            ]
            baseline_day = p.enrolled_on - timedelta(days=rng.randint(3, 20))
            days = [baseline_day]
            day = p.enrolled_on
            while len(days) < 11:
                day = day + timedelta(days=56 + rng.randint(-6, 6))
                if day >= self.today:
                    break
                days.append(day)
            pd_at = rng.randint(2, 9) if kind == "progression" else None
            new_lesion = None
            if pd_at is not None and pd_at < len(days):
                new_lesion = Lesion(
                    patient=p,
                    label="N1",
                    organ=rng.choice(("liver", "lung", "bone")),
                    category="new",
                    location="new lesion",
                )
                mine.append(new_lesion)
            lesions += mine
            patient_scans = [
                ImagingAssessment(
                    patient=p,
                    scan_date=d,
                    modality=rng.choice(("CT", "CT", "CT", "PET-CT", "MRI")),
                    is_baseline=k == 0,
                    new_lesions="YES" if pd_at is not None and new_lesion and k >= pd_at else "NO",
                )
                for k, d in enumerate(days)
            ]
            scans += patient_scans
            plan.append((p, kind, mine, patient_scans, pd_at, new_lesion))
        self._bulk(Lesion, lesions)
        self._bulk(ImagingAssessment, scans)
        measurements = []
        for _p, kind, mine, patient_scans, pd_at, new_lesion in plan:
            targets = [le for le in mine if le.category == "target"]
            base = {le.pk: rng.uniform(11, 38) for le in targets}
            for k, scan in enumerate(patient_scans):
                for le in targets:
                    shrink = {"response": 0.55, "stable": 0.15, "progression": 0.1}[kind]
                    factor = 1 - shrink * min(k, 3) / 3 + rng.uniform(-0.04, 0.04)
                    if kind == "progression" and pd_at is not None and k >= pd_at:
                        factor = 1.35 + 0.05 * (k - pd_at)
                    value = max(base[le.pk] * (factor if k else 1), 4.0)
                    measurements.append(
                        Measurement(assessment=scan, lesion=le, diameter_mm=self._d(value))
                    )
                if new_lesion is not None and k >= (pd_at or 99):
                    measurements.append(
                        Measurement(
                            assessment=scan,
                            lesion=new_lesion,
                            diameter_mm=self._d(rng.uniform(11, 24)),
                        )
                    )
        self._bulk(Measurement, measurements)
        self.imaging_plan = plan

    # --- SBRT: one course per irradiated lesion, weekday fractions ----------------------------

    def _sbrt(self) -> None:
        from treatments.models import Fraction, Prescription, RadiotherapyCourse

        rng = self.rng
        courses, prescriptions, fractions = [], [], []
        fixed = {}
        from treatments.models import ArmPrescription

        for ap in ArmPrescription.objects.all():
            fixed[ap.arm_id] = (ap.total_dose_gy, ap.fractions)
        for p, _kind, mine, _scans, _pd, _new in self.imaging_plan:
            if p.status == "enrolled":
                continue
            arm = self.arm_of.get(p.pk)
            day = p.enrolled_on + timedelta(days=rng.randint(3, 10))
            for number, le in enumerate(t for t in mine if t.category == "target"):
                total, count = fixed.get(arm.pk if arm else None) or rng.choice(_SCHEDULES)
                while day.weekday() >= 5:
                    day += timedelta(days=1)
                course = RadiotherapyCourse(
                    patient=p,
                    number=number + 1,
                    technique=rng.choice(_TECHNIQUES),
                    motion_management=rng.choice(_MOTION),
                    planned_start=day,
                )
                courses.append(course)
                prescriptions.append(
                    Prescription(
                        course=course,
                        lesion=le,
                        total_dose_gy=total,
                        fractions=count,
                        dose_per_fraction_gy=(total / count).quantize(Decimal("0.01")),
                        isodose_pct=rng.choice((70, 80, 80, 90)),
                    )
                )
                log = []
                for f in range(count):
                    while day.weekday() >= 5:
                        day += timedelta(days=1)
                    log.append(Fraction(course=course, number=f + 1, day=day))
                    day += timedelta(days=rng.choice((1, 2)))
                course.planned_end = log[-1].day
                fractions += log
        self._bulk(RadiotherapyCourse, courses)
        for row in prescriptions + fractions:
            row.course_id = row.course.pk
        self._bulk(Prescription, prescriptions)
        self._bulk(Fraction, fractions)

    # --- systemic lines: prior lines before inclusion, the next line at progression -----------

    def _lines(self) -> None:
        from treatments.models import Agent, LineAgent, SystemicLine

        rng = self.rng
        agents = {a.name: a for a in Agent.objects.all()}
        fallback = list(agents.values())
        lines, line_agents = [], []
        progression = {
            p.pk: (scans[pd] if pd is not None and pd < len(scans) else None)
            for p, _k, _m, scans, pd, _n in self.imaging_plan
        }
        for p in self.enrolled:
            names = [
                agents[n] for n in _AGENTS_BY_STUDY.get(p.study_site.study.code, ()) if n in agents
            ]
            pool = names or fallback
            start = p.enrolled_on - timedelta(days=rng.randint(700, 1400))
            prior = rng.choice((2, 2, 3, 3, 4))
            number = 0
            for number in range(1, prior + 1):
                end = start + timedelta(days=rng.randint(90, 300))
                if end >= p.enrolled_on:
                    end = p.enrolled_on - timedelta(days=1)
                last = number == prior
                lines.append(
                    SystemicLine(
                        patient=p,
                        line_number=number,
                        start=start,
                        end=None if last and p.study_site.study.code.startswith("STORM") else end,
                        stop_reason=""
                        if last and p.study_site.study.code.startswith("STORM")
                        else "progression",
                    )
                )
                line_agents.append((lines[-1], rng.choice(pool)))
                start = end + timedelta(days=rng.randint(7, 30))
                if start >= p.enrolled_on:
                    break
            scan = progression.get(p.pk)
            if scan is not None:
                lines.append(
                    SystemicLine(
                        patient=p,
                        line_number=number + 1,
                        start=scan.scan_date + timedelta(days=rng.randint(7, 30)),
                    )
                )
                line_agents.append((lines[-1], rng.choice(pool)))
        lines = [line for line in lines if line.start < self.today]
        self._bulk(SystemicLine, lines)
        self._bulk(
            LineAgent, [LineAgent(line=line, agent=agent) for line, agent in line_agents if line.pk]
        )

    # --- adverse events: CTCAE terms and grades the term defines ------------------------------

    def _adverse_events(self) -> None:
        from patients.models_safety import AdverseEvent, CtcaeTerm

        rng = self.rng
        terms = list(CtcaeTerm.objects.filter(term__in=_AE_TERMS))
        grades = {
            t.pk: [g for g in (1, 2, 3) if getattr(t, f"grade{g}").strip() not in ("", "-")]
            for t in terms
        }
        rows = []
        for p in self.enrolled:
            span = (self.today - p.enrolled_on).days
            drug = self.arm_of.get(p.pk) is not None and p.study_site.study.code in (
                "STEREOSARC",
                "ATRA-SBRT",
            )
            for _ in range(rng.randint(14, 30) if span > 60 else rng.randint(1, 6)):
                term = rng.choice(terms)
                grade = rng.choices(grades[term.pk], (60, 32, 8)[: len(grades[term.pk])])[0]
                onset = p.enrolled_on + timedelta(days=rng.randint(1, max(span - 1, 1)))
                resolved = onset + timedelta(days=rng.randint(3, 60))
                serious = grade == 3 and rng.random() < 0.4
                rows.append(
                    AdverseEvent(
                        patient=p,
                        term=term,
                        grade=grade,
                        onset_on=onset,
                        resolved_on=resolved if resolved < self.today else None,
                        attribution_sbrt=rng.choice(
                            ("unrelated", "unlikely", "possible", "probable")
                        ),
                        attribution_systemic=rng.choice(("unrelated", "unlikely", "possible")),
                        attribution_study_drug=rng.choice(("unlikely", "possible"))
                        if drug
                        else "na",
                        serious=serious,
                        sae_hospitalisation=serious,
                        action="none",
                        outcome="recovered" if resolved < self.today else "recovering",
                    )
                )
        self._bulk(AdverseEvent, rows)

    # --- laboratory results, graded by the CTCAE grader --------------------------------------

    def _labs(self) -> None:
        from patients.lab_services import _apply
        from patients.models_safety import LabResult

        rng = self.rng
        rows = []
        offsets = (-7, 14, 35, 90, 180, 365)
        for p in self.enrolled:
            for k, offset in enumerate(offsets):
                day = p.enrolled_on + timedelta(days=offset)
                if day >= self.today:
                    break
                for analyte, (unit, _lln, _uln, mean, sd) in _LABS.items():
                    value = rng.gauss(mean, sd)
                    if analyte == "lymphocytes" and k in (1, 2):
                        value *= rng.uniform(0.35, 0.9)  # lymphopenia after SBRT
                    places = "0.01" if unit == "10^9/L" and analyte != "platelets" else "0.1"
                    result = LabResult(
                        patient=p,
                        sampled_on=day,
                        analyte=analyte,
                        value=self._d(max(value, 0.05), places),
                        unit=unit,
                    )
                    _apply(result, self.ranges[(p.study_site_id, analyte)])
                    rows.append(result)
        self._bulk(LabResult, rows)

    # --- what the application computes ------------------------------------------------------

    def _derived(self) -> None:
        from lesions.services import recompute_many
        from patients.models import Patient
        from patients.visit_services import visits_sync
        from studies.audit import reason_for_change

        ids = [p.pk for p in self.enrolled]
        self.log(f"responses: {len(recompute_many(ids))} patients evaluated")
        with reason_for_change("Synthetic portfolio", command="generate_portfolio"):
            for patient in Patient.objects.filter(pk__in=ids).only("pk"):
                with _triggers_off():
                    visits_sync(patient)
        from patients.models_visits import PlannedVisit

        # Sites record most past visits (done on the due day); some stay late or missed.
        past = PlannedVisit.objects.filter(
            patient_id__in=ids, state="planned", window_end__lt=self.today
        ).order_by("pk")
        done, missed = [], []
        for visit in past:
            roll = self.rng.random()
            if roll < 0.85:
                visit.state, visit.done_on = "done", visit.due_on
                done.append(visit)
            elif roll < 0.95:
                visit.state, visit.missed_reason = "missed", "Patient unable to attend"
                missed.append(visit)
        with _triggers_off():
            PlannedVisit.objects.bulk_update(done, ["state", "done_on"], batch_size=2000)
            PlannedVisit.objects.bulk_update(missed, ["state", "missed_reason"], batch_size=2000)
        self.counts[PlannedVisit._meta.label] = PlannedVisit.objects.count()

    # --- audit history ----------------------------------------------------------------------

    def _audit_history(self) -> None:
        """Insert events for every synthetic row, then corrections, up to the size's total."""
        import pghistory.models

        from lesions.models import ImagingAssessment, Lesion, Measurement
        from patients.models import Consent, EligibilityAnswer, EligibilityFacts, Patient
        from patients.models_safety import AdverseEvent, LabResult
        from patients.models_visits import PlannedVisit
        from studies.audit import event_model_for
        from treatments.models import Fraction, Prescription, RadiotherapyCourse, SystemicLine

        contexts = []
        for ss in self.study_sites:
            user = self.site_users[ss.pk]
            for k in range(12):
                contexts.append(
                    pghistory.models.Context(
                        id=uuid.UUID(int=self.rng.getrandbits(128)),
                        metadata={
                            "user": user.pk,
                            "reason": _REASONS[k % len(_REASONS)] if k else "",
                            "url": f"/sites/{ss.pk}/patients/",
                        },
                    )
                )
        pghistory.models.Context.objects.bulk_create(contexts)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS synth_ctx")
            cursor.execute("CREATE TEMP TABLE synth_ctx (study_site_id int, n int, ctx uuid)")
            values = [
                (ss.pk, k, contexts[i * 12 + k].id)
                for i, ss in enumerate(self.study_sites)
                for k in range(12)
            ]
            cursor.executemany("INSERT INTO synth_ctx VALUES (%s, %s, %s)", values)
            cursor.execute("SELECT setseed(%s)", [(self.seed % 1000) / 1000])
        p = "p"
        # model: (join from the row alias t to patient alias p, date the record was entered)
        tables = [
            (Patient, "", "t.screened_on", 1),
            (
                EligibilityFacts,
                "JOIN patients_patient p ON p.id = t.patient_id",
                "p.screened_on",
                1,
            ),
            (Consent, "JOIN patients_patient p ON p.id = t.patient_id", "t.consented_on", 0),
            (
                EligibilityAnswer,
                "JOIN patients_patient p ON p.id = t.patient_id",
                "p.screened_on",
                0,
            ),
            (Lesion, "JOIN patients_patient p ON p.id = t.patient_id", "p.enrolled_on", 2),
            (ImagingAssessment, "JOIN patients_patient p ON p.id = t.patient_id", "t.scan_date", 3),
            (
                Measurement,
                "JOIN lesions_imagingassessment a ON a.id = t.assessment_id "
                "JOIN patients_patient p ON p.id = a.patient_id",
                "a.scan_date",
                10,
            ),
            (
                RadiotherapyCourse,
                "JOIN patients_patient p ON p.id = t.patient_id",
                "t.planned_start",
                2,
            ),
            (
                Prescription,
                "JOIN treatments_radiotherapycourse c ON c.id = t.course_id "
                "JOIN patients_patient p ON p.id = c.patient_id",
                "c.planned_start",
                2,
            ),
            (
                Fraction,
                "JOIN treatments_radiotherapycourse c ON c.id = t.course_id "
                "JOIN patients_patient p ON p.id = c.patient_id",
                "t.day",
                4,
            ),
            (
                SystemicLine,
                "JOIN patients_patient p ON p.id = t.patient_id",
                "GREATEST(t.start, p.enrolled_on)",
                3,
            ),
            (AdverseEvent, "JOIN patients_patient p ON p.id = t.patient_id", "t.onset_on", 8),
            (LabResult, "JOIN patients_patient p ON p.id = t.patient_id", "t.sampled_on", 6),
            (
                PlannedVisit,
                "JOIN patients_patient p ON p.id = t.patient_id",
                "LEAST(t.due_on, CURRENT_DATE)",
                3,
            ),
        ]
        synthetic = {pt.pk for pt in self.patients}
        first, last = min(synthetic), max(synthetic)
        written = 0
        weights = sum(self._rows(m) * w for m, _j, _d, w in tables)
        budget = max(self.size.audit_events, 0)
        for model, join, day, _weight in tables:
            inserts = self._events(model, event_model_for(model), join, day, p, first, last, 0, 1.0)
            written += inserts
        remaining = max(budget - written, 0)
        for model, join, day, weight in tables:
            if not weight or not remaining:
                continue
            share = remaining * self._rows(model) * weight / weights
            rows = self._rows(model) or 1
            passes = share / rows
            for g in range(1, int(passes) + 2):
                fraction = min(passes - (g - 1), 1.0)
                if fraction <= 0:
                    break
                written += self._events(
                    model, event_model_for(model), join, day, p, first, last, g, fraction
                )
        self.counts["audit events"] = written

    def _rows(self, model) -> int:
        return self.counts.get(model._meta.label) or model.objects.count()

    def _events(self, model, event_model, join, day, p, first, last, g, fraction) -> int:
        """One pass of events for every synthetic row of ``model`` (g = 0: the insert)."""
        columns, values = [], []
        for field in event_model._meta.concrete_fields:
            if field.attname == "pgh_id":
                continue
            columns.append(connection.ops.quote_name(field.column))
            if field.attname == "pgh_created_at":
                if g == 0:
                    values.append(
                        f"LEAST(({day})::timestamp + interval '9 hours' "
                        "+ random() * interval '2 days', now())"
                    )
                else:
                    values.append(
                        f"LEAST(({day})::timestamp + interval '{2 + 9 * g} days' "
                        "+ random() * interval '8 days', now())"
                    )
            elif field.attname == "pgh_label":
                values.append("'insert'" if g == 0 else "'update'")
            elif field.attname == "pgh_obj_id":
                values.append("t.id")
            elif field.attname == "pgh_context_id":
                values.append(
                    f"(SELECT ctx FROM synth_ctx x WHERE x.study_site_id = {p}.study_site_id"
                    f" AND x.n = {0 if g == 0 else f'1 + (t.id + {g}) % 11'})"
                )
            else:
                values.append(f"t.{connection.ops.quote_name(field.column)}")
        alias_patient = "t" if model._meta.db_table == "patients_patient" else p
        where = f"{alias_patient}.id BETWEEN {first} AND {last}"
        if fraction < 1.0:
            where += f" AND (t.id * 7919 + {g}) % 1000 < {int(fraction * 1000)}"
        select = ", ".join(values)
        if alias_patient == "t":
            select = select.replace(f"{p}.study_site_id", "t.study_site_id")
        sql = (
            f"INSERT INTO {event_model._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {select} FROM {model._meta.db_table} t {join} WHERE {where}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.rowcount
