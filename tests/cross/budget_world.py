"""A site with fully documented patients, grown tenfold, for the query budget tests.

Every form a site records (baseline and follow-up scans, an SBRT course, a systemic line, study
drug cycles, adverse events, laboratory results, planned visits) is entered through the
services, so the rows are those the pages really meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal as D
from html.parser import HTMLParser

from django.utils import timezone

from lesions import services as lesion_services
from patients import ae_services, lab_services
from patients import services as patient_services
from patients.ctcae_terms import ensure_terms
from patients.models import Consent, CtcaeTerm, Patient
from patients.visit_services import visits_sync
from studies.roles import Role
from studies.services import randomisation_list_upload, strata_for
from tests.factories import MembershipFactory, UserFactory
from tests.patients.conftest import make_ready
from treatments import drug_services
from treatments.models import (
    Agent,
    DrugRegimen,
    Fraction,
    LineAgent,
    Prescription,
    RadiotherapyCourse,
    SystemicLine,
)

STUDY = "ATRA-SBRT"
ENROLLED_DAYS_AGO = 400
AE_TERMS = ("Pneumonitis", "Fatigue", "Cough", "Nausea", "Diarrhea", "Anorexia")
LAB_ROWS = (("haemoglobin", "12.5", "g/dL"), ("lymphocytes", "900", "/mm3"))


def _day(days_ago: int):
    return timezone.localdate() - timedelta(days=days_ago)


@dataclass
class BudgetWorld:
    study: object
    study_site: object
    investigator: object
    patient: object  # the patient whose pages are measured (gains records as the world grows)
    others: list = field(default_factory=list)
    users: dict = field(default_factory=dict)

    @property
    def scan(self):
        return self.patient.assessments.filter(is_baseline=False).order_by("scan_date").first()

    @property
    def course(self):
        return self.patient.courses.first()

    @property
    def line(self):
        return self.patient.systemic_lines.order_by("line_number").first()

    @property
    def cycle(self):
        return self.patient.drug_cycles.order_by("number").first()

    @property
    def ae(self):
        return self.patient.adverse_events.order_by("onset_on", "pk").first()

    @property
    def serious_ae(self):
        return self.patient.adverse_events.filter(serious=True).order_by("pk").first()

    @property
    def lab(self):
        return self.patient.lab_results.order_by("sampled_on", "pk").first()


def enrolled_patient(study, by, number: str) -> Patient:
    """Screened, eligible, consented and enrolled, all of it ENROLLED_DAYS_AGO days ago."""
    patient = make_ready(study, by, number)
    patient_services.patient_enrol(patient=patient, by=by)
    start = _day(ENROLLED_DAYS_AGO)
    Patient.objects.filter(pk=patient.pk).update(
        screened_on=start - timedelta(days=5), enrolled_on=start, status_changed_on=start
    )
    Consent.objects.filter(patient=patient).update(consented_on=start - timedelta(days=2))
    patient.refresh_from_db()
    return patient


def _imaging(patient, by, scans: int) -> None:
    rows = [
        lesion_services.LesionRow("T1", "lung", False, "target", D("24"), planned_for_sbrt=True),
        lesion_services.LesionRow("T2", "liver", False, "target", D("18"), planned_for_sbrt=True),
        lesion_services.LesionRow("NT1", "bone", False, "non_target", None),
    ]
    lesion_services.baseline_record(
        patient=patient, scan_date=_day(ENROLLED_DAYS_AGO - 1), modality="CT", rows=rows, by=by
    )
    lesions = {le.label: le.pk for le in patient.lesions.all()}
    for n in range(scans):
        size = D(22 - n % 5)
        lesion_services.assessment_record(
            patient=patient,
            by=by,
            scan_date=_day(ENROLLED_DAYS_AGO - 60 - 15 * n),
            modality="CT",
            non_target_status="NON_CR_NON_PD",
            new_lesions="NO",
            measurements={
                lesions["T1"]: lesion_services.MeasurementRow("present", size),
                lesions["T2"]: lesion_services.MeasurementRow("present", size - 4),
            },
        )


def _sbrt(patient) -> None:
    first = _day(ENROLLED_DAYS_AGO - 10)
    first -= timedelta(days=first.weekday())  # a Monday: five fractions on weekdays
    course = RadiotherapyCourse.objects.create(
        patient=patient, technique="truebeam", planned_start=first
    )
    for lesion in patient.lesions.filter(category="target"):
        Prescription.objects.create(
            course=course, lesion=lesion, total_dose_gy=35, fractions=5, dose_per_fraction_gy=7
        )
    for n in range(5):
        Fraction.objects.create(course=course, number=n + 1, day=first + timedelta(days=n))


def _line(patient, number: int) -> None:
    start = _day(ENROLLED_DAYS_AGO - 30 - 15 * number)
    line = SystemicLine.objects.create(
        patient=patient,
        line_number=number,
        start=start,
        end=start + timedelta(days=14),
        stop_reason=SystemicLine.StopReason.PROGRESSION,
    )
    agent, _ = Agent.objects.get_or_create(name="sunitinib", defaults={"drug_class": "tki"})
    LineAgent.objects.create(line=line, agent=agent)


def _cycles(patient, by) -> None:
    regimen = DrugRegimen.objects.get(study=patient.study_site.study)
    first = _day(ENROLLED_DAYS_AGO - 10)
    first -= timedelta(days=first.weekday())  # a Monday: five fractions on weekdays
    for number in range(1, regimen.max_cycles + 1):
        drug_services.cycle_record(
            patient=patient,
            by=by,
            regimen=regimen,
            number=number,
            data={
                "given_on": first + timedelta(days=21 * (number - 1)),
                "height_cm": D(170),
                "weight_kg": D(70),
                "given_total_mg": D(810),
                "status": "given",
                "reason": "",
            },
        )


def _aes(patient, by, count: int, start: int = 0) -> None:
    terms = {t.term: t for t in CtcaeTerm.objects.filter(term__in=AE_TERMS)}
    for n in range(start, start + count):
        ae_services.ae_record(
            patient=patient,
            by=by,
            data={
                "term": terms[AE_TERMS[n % len(AE_TERMS)]],
                "grade": 1 + n % 2,
                "onset_on": _day(ENROLLED_DAYS_AGO - 20 - 7 * n),
                "attribution_sbrt": "possible",
                "attribution_systemic": "unrelated",
                "attribution_study_drug": "possible",
                "serious": False,
                "action": "none",
                "outcome": "recovering",
            },
        )


def _serious_ae(patient, by) -> None:
    """A serious adverse event (hospitalisation) with its initial SAE report."""
    ae = ae_services.ae_record(
        patient=patient,
        by=by,
        data={
            "term": CtcaeTerm.objects.get(term="Pneumonitis"),
            "grade": 3,
            "onset_on": _day(ENROLLED_DAYS_AGO - 25),
            "attribution_sbrt": "probable",
            "attribution_systemic": "unrelated",
            "attribution_study_drug": "possible",
            "serious": True,
            "sae_hospitalisation": True,
            "action": "none",
            "outcome": "recovering",
        },
    )
    ae_services.sae_report_add(
        ae=ae,
        by=by,
        kind="initial",
        reported_on=_day(ENROLLED_DAYS_AGO - 26),
        narrative="Admitted for oxygen therapy.",
    )


def _labs(patient, by, samples: int) -> None:
    for n in range(samples):
        lab_services.lab_record(
            patient=patient,
            by=by,
            sampled_on=_day(ENROLLED_DAYS_AGO - 15 - 9 * n),
            results=[(analyte, D(value), unit) for analyte, value, unit in LAB_ROWS],
        )


def document(patient, by, records: int) -> None:
    """Every kind of form, ``records`` of each repeated kind (scans, lines, AEs, lab samples)."""
    _imaging(patient, by, scans=records)
    _sbrt(patient)
    for number in range(1, records + 1):
        _line(patient, number)
    _cycles(patient, by)
    _aes(patient, by, records)
    _labs(patient, by, records)
    visits_sync(patient)


def ranges(study_site, by) -> None:
    for analyte, lln, uln, unit in (
        ("haemoglobin", D("12"), D("16"), "g/dL"),
        ("lymphocytes", D("1000"), D("4000"), "/mm3"),
    ):
        lab_services.normal_range_save(
            study_site=study_site, analyte=analyte, lln=lln, uln=uln, unit=unit, by=by
        )


def staff(study, study_site) -> dict:
    """A study-wide monitor, a site monitor and a data manager, all blinded."""
    users = {}
    for name, site, role in (
        ("monitor", None, Role.MONITOR),
        ("site_monitor", study_site, Role.MONITOR),
        ("data_manager", None, Role.DATA_MANAGER),
    ):
        user = UserFactory(username=f"budget_{name}", is_staff=True)
        MembershipFactory(user=user, study=study, study_site=site, role=role, blinded=True)
        users[name] = user
    return users


def build(seeds, investigator, *, patients: int, records: int) -> BudgetWorld:
    """``patients`` documented patients at the study's first site, the first with ``records``
    records of each repeated kind and the others with one."""
    ensure_terms()
    study = seeds[STUDY]
    # Every patient in the study drug arm (the ATRA regimen is given in that arm only).
    randomisation_list_upload(
        study=study,
        by=investigator,
        rows=[
            {"stratum": stratum, "sequence": str(n), "arm": "SBRT_ATRA"}
            for stratum in strata_for(study)
            for n in range(1, 201)
        ],
    )
    study_site = study.study_sites.order_by("number").first()
    ranges(study_site, investigator)
    patient = enrolled_patient(study, investigator, "B000")
    document(patient, investigator, records)
    _serious_ae(patient, investigator)
    world = BudgetWorld(study, study_site, investigator, patient)
    world.users = {"investigator": investigator, **staff(study, study_site)}
    grow(world, patients - 1)
    return world


def grow(world: BudgetWorld, patients: int, records: int = 0) -> None:
    """Add ``patients`` documented patients, and ``records`` more of each kind to the patient."""
    for _n in range(patients):
        other = enrolled_patient(world.study, world.investigator, f"B{len(world.others) + 1:03d}")
        document(other, world.investigator, 1)
        world.others.append(other)
    if records:
        more_records(world, records)


def more_records(world: BudgetWorld, records: int) -> None:
    patient, by = world.patient, world.investigator
    lesions = {le.label: le.pk for le in patient.lesions.all()}
    done = patient.assessments.filter(is_baseline=False).count()
    for n in range(done, done + records):
        lesion_services.assessment_record(
            patient=patient,
            by=by,
            scan_date=_day(ENROLLED_DAYS_AGO - 60 - 15 * n),
            modality="CT",
            non_target_status="NON_CR_NON_PD",
            new_lesions="NO",
            measurements={
                lesions["T1"]: lesion_services.MeasurementRow("present", D(20)),
                lesions["T2"]: lesion_services.MeasurementRow("present", D(15)),
            },
        )
    lines = patient.systemic_lines.count()
    for number in range(lines + 1, lines + records + 1):
        _line(patient, number)
    _aes(patient, by, records, start=patient.adverse_events.count())
    samples = patient.lab_results.values("sampled_on").distinct().count()
    for n in range(samples, samples + records):
        lab_services.lab_record(
            patient=patient,
            by=by,
            sampled_on=_day(ENROLLED_DAYS_AGO - 15 - 9 * n),
            results=[(analyte, D(value), unit) for analyte, value, unit in LAB_ROWS],
        )
    visits_sync(patient)


class FormFields(HTMLParser):
    """The fields a browser would submit from the page's own form (method=post, no action)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._depth = 0  # > 0 inside the page's own form
        self._done = False
        self._select: tuple[str, bool, list[tuple[str, bool]]] | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v if v is not None else "" for k, v in attrs}
        if tag == "form":
            own = a.get("method", "").lower() == "post" and not a.get("action")
            self._depth += 1 if (self._depth or own) and not self._done else 0
        elif self._depth and "disabled" not in a:
            self._field(tag, a)

    def _field(self, tag: str, a: dict) -> None:
        name = a.get("name")
        if tag == "input" and name:
            self._input(name, a)
        elif tag == "select" and name:
            self._select = (name, "multiple" in a, [])
        elif tag == "option" and self._select is not None:
            self._select[2].append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data.setdefault(name, []).append("")

    def _input(self, name: str, a: dict) -> None:
        kind = a.get("type", "text").lower()
        if kind in ("submit", "button", "file") or (
            kind in ("checkbox", "radio") and "checked" not in a
        ):
            return
        self.data.setdefault(name, []).append(a.get("value", "on" if kind == "checkbox" else ""))

    def handle_endtag(self, tag):
        if tag == "form" and self._depth:
            self._depth -= 1
            self._done = not self._depth
        elif tag == "select" and self._select is not None:
            name, multiple, options = self._select
            chosen = [value for value, selected in options if selected]
            if not chosen and not multiple and options:
                chosen = [options[0][0]]
            self.data.setdefault(name, []).extend(chosen if multiple else chosen[:1])
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][-1] += data


def form_data(html: str) -> dict[str, list[str]]:
    parser = FormFields()
    parser.feed(html)
    return parser.data
