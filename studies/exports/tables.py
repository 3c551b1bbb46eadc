"""The form types an export writes: one table each (a CSV file, an ODM form), with its columns.

Columns are named after the model fields they read; type, description and codes come from the
field (``sources.col``). ``hidden=ARM`` marks what a blinded export leaves out, ``hidden=IRECIST``
what it leaves out when only some arms are assessed with iRECIST.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from django.db.models import Q, StringAgg, Value
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from lesions.models import (
    ImagingAssessment,
    Lesion,
    Measurement,
    PatientResponse,
    Response,
    TimepointResult,
)
from patients.models import (
    AdverseEvent,
    Consent,
    EligibilityAnswer,
    EligibilityFacts,
    LabResult,
    Patient,
    PlannedVisit,
)
from studies.exports.sources import (
    ARM,
    IRECIST,
    TEXT,
    Codes,
    Column,
    ExportContext,
    StaticCodes,
    Table,
    col,
)
from studies.models import Arm
from treatments.models import DrugCycle, Fraction, Prescription, RadiotherapyCourse, SystemicLine

SCREENING, TUMOUR, TREATMENT, SAFETY, SCHEDULE, END = [
    "SCREENING",
    "TUMOUR",
    "TREATMENT",
    "SAFETY",
    "SCHEDULE",
    "END",
]
#: ODM study events, in order, with their names.
EVENTS = {
    SCREENING: _("Screening and enrolment"),
    TUMOUR: _("Tumour assessments"),
    TREATMENT: _("Treatments"),
    SAFETY: _("Safety"),
    SCHEDULE: _("Visit schedule"),
    END: _("End of study"),
}
RESPONSES = Response.choices


def _cols(model, lookups: str, hidden: str = "") -> tuple[Column, ...]:
    """Columns named after their fields, from a space-separated list of lookups."""
    return tuple(col(model, lookup, hidden=hidden) for lookup in lookups.split())


def _arm_codes(ctx: ExportContext) -> dict[str, Any]:
    return dict(Arm.objects.filter(study=ctx.study).order_by("code").values_list("code", "name"))


def _agent_names():
    return StringAgg("line_agents__agent__name", Value("; "), order_by="line_agents__agent__name")


def _patients() -> Table:
    p = Patient
    columns = (
        *_cols(p, "screening_number screened_on screening_outcome declined_reason status"),
        *_cols(p, "status_changed_on sex year_of_birth age_at_consent enrolled_on"),
        col(p, "allocation__arm__code", "arm", description=_("arm"), codes=_arm_codes, hidden=ARM),
        col(p, "allocation__part", "allocation_part", description=_("allocation"), hidden=ARM),
        col(p, "allocation__stratum", "stratum", description=_("stratum")),
        col(p, "allocation__allocated_at", "allocated_at", description=_("allocated at")),
    )
    return Table("patients", _("Patients"), p, "", columns, SCREENING, repeating=False)


def _screening() -> tuple[Table, ...]:
    facts = _cols(
        EligibilityFacts,
        "ecog current_line prior_lines liver_metastases restaging_on planned_treatment_start "
        "childbearing_potential pregnancy_test_on pregnancy_test_negative",
    )
    a = EligibilityAnswer
    answers = (
        col(a, "criterion__kind", "criterion_kind"),
        col(a, "criterion__number", "criterion_number"),
        col(a, "criterion__text", "criterion_text"),
        *_cols(a, "satisfied computed_outcome computed_detail"),
    )
    consent = _cols(Consent, "consented_on form_version withdrawn_on withdrawal_scope")
    return (
        Table(
            "eligibility",
            _("Eligibility"),
            EligibilityFacts,
            "patient",
            facts,
            SCREENING,
            repeating=False,
        ),
        Table(
            "eligibility_answers",
            _("Eligibility criteria"),
            a,
            "patient",
            answers,
            SCREENING,
            order=("criterion__kind", "criterion__number"),
        ),
        Table(
            "consent", _("Consent"), Consent, "patient", consent, SCREENING, order=("consented_on",)
        ),
    )


def _scans() -> tuple[Table, ...]:
    lesions = _cols(
        Lesion,
        "label organ location is_node category status_at_inclusion planned_for_sbrt new_is_target",
    )
    scans = _cols(
        ImagingAssessment,
        "scan_date modality is_baseline non_target_status new_lesions non_target_increase",
    )
    m = Measurement
    measurements = (
        col(m, "assessment", "assessment_id", description=_("imaging assessment (record_id)")),
        col(m, "assessment__scan_date", "scan_date"),
        col(m, "lesion", "lesion_id", description=_("lesion (record_id)")),
        col(m, "lesion__label", "lesion_label"),
        *_cols(m, "state diameter_mm fragments_mm"),
        col(m, "coalesced_into__label", "coalesced_into"),
        col(m, "status"),
    )
    return (
        Table("lesions", _("Lesions"), Lesion, "patient", lesions, TUMOUR, order=("label",)),
        Table(
            "imaging_assessments",
            _("Imaging assessments"),
            ImagingAssessment,
            "patient",
            scans,
            TUMOUR,
            order=("scan_date",),
        ),
        Table(
            "measurements",
            _("Lesion measurements"),
            m,
            "assessment__patient",
            measurements,
            TUMOUR,
            order=("assessment__scan_date", "lesion__label"),
        ),
    )


def _responses() -> tuple[Table, ...]:
    """What the response engine computed (lesions/recist.py, lesions/irecist.py)."""
    t = TimepointResult
    timepoints = (
        col(t, "assessment", "assessment_id", description=_("imaging assessment (record_id)")),
        col(t, "assessment__scan_date", "scan_date"),
        col(t, "sum_mm", description=_("sum of diameters (mm)")),
        col(t, "nadir_mm", description=_("nadir of the sum of diameters (mm)")),
        col(t, "change_from_baseline_pct", description=_("change from baseline (%)")),
        col(t, "change_from_nadir_pct", description=_("change from nadir (%)")),
        col(t, "target", description=_("target lesion response"), choices=RESPONSES),
        col(t, "non_target", description=_("non-target response"), choices=RESPONSES),
        col(t, "new_lesions", description=_("new lesions")),
        col(t, "overall", description=_("RECIST 1.1 overall response"), choices=RESPONSES),
        col(t, "irecist_overall", description=_("iRECIST overall response"), hidden=IRECIST),
    )
    r = PatientResponse
    best = (
        col(r, "baseline_sum_mm", description=_("baseline sum of diameters (mm)")),
        col(
            r,
            "best_overall_response",
            description=_("best overall response (RECIST 1.1)"),
            choices=RESPONSES,
        ),
        col(r, "best_response_on", description=_("date of the best response")),
        col(r, "best_change_pct", description=_("best change from baseline (%)")),
        col(r, "progression_on", description=_("date of progression (RECIST 1.1)")),
        col(
            r,
            "irecist_best_response",
            description=_("best overall response (iRECIST)"),
            hidden=IRECIST,
        ),
        col(r, "first_iupd_on", description=_("first iUPD"), hidden=IRECIST),
        col(r, "icpd_on", description=_("confirmed progression (iCPD)"), hidden=IRECIST),
        col(r, "in_field_progression_on", description=_("first in-field progression")),
        col(r, "out_of_field_progression_on", description=_("first out-of-field progression")),
    )
    return (
        Table(
            "timepoint_responses",
            _("Timepoint responses"),
            t,
            "assessment__patient",
            timepoints,
            TUMOUR,
            order=("assessment__scan_date",),
        ),
        Table(
            "patient_responses", _("Best responses"), r, "patient", best, TUMOUR, repeating=False
        ),
    )


def _sbrt() -> tuple[Table, ...]:
    """Dose and fractionation reveal the arm in a double-blind study (e.g. STOP-2): the dose
    columns, the last planned day and the fraction log are left out of blinded exports."""
    c = RadiotherapyCourse
    courses = (
        *_cols(c, "number technique motion_management image_guidance planned_start"),
        col(c, "planned_end", hidden=ARM),
    )
    p = Prescription
    prescriptions = (
        col(p, "course", "course_id", description=_("SBRT course (record_id)")),
        col(p, "course__number", "course_number"),
        col(p, "lesion", "lesion_id", description=_("lesion (record_id)")),
        col(p, "lesion__label", "lesion_label"),
        *_cols(p, "total_dose_gy fractions dose_per_fraction_gy isodose_pct", hidden=ARM),
    )
    f = Fraction
    fractions = (
        col(f, "course", "course_id", description=_("SBRT course (record_id)")),
        col(f, "course__number", "course_number"),
        *_cols(f, "number day status reason"),
    )
    return (
        Table(
            "sbrt_courses", _("SBRT courses"), c, "patient", courses, TREATMENT, order=("number",)
        ),
        Table(
            "sbrt_prescriptions",
            _("SBRT prescriptions"),
            p,
            "course__patient",
            prescriptions,
            TREATMENT,
            order=("course__number", "lesion__label"),
        ),
        Table(
            "sbrt_fractions",
            _("SBRT fractions"),
            f,
            "course__patient",
            fractions,
            TREATMENT,
            order=("course__number", "number"),
            hidden_by=ARM,
        ),
    )


def _systemic() -> tuple[Table, ...]:
    s = SystemicLine
    lines = (
        col(s, "line_number"),
        col(s, "agent_names", "agents", type=TEXT, description=_("agents")),
        *_cols(s, "start end stop_reason stop_detail"),
    )
    d = DrugCycle
    cycles = (
        col(d, "regimen__agent__name", "agent"),
        *_cols(d, "number planned_on given_on height_cm weight_kg bsa_m2 planned_daily_mg"),
        *_cols(d, "planned_total_mg given_total_mg status reason dose_explanation"),
    )
    return (
        Table(
            "systemic_lines",
            _("Systemic therapy lines"),
            s,
            "patient",
            lines,
            TREATMENT,
            order=("start", "line_number"),
            annotations={"agent_names": _agent_names},
        ),
        # A study drug given in one arm only names the arm by its mere presence.
        Table(
            "drug_cycles",
            _("Study drug cycles"),
            d,
            "patient",
            cycles,
            TREATMENT,
            order=("regimen__agent__name", "number"),
            blinded_exclude=Q(regimen__arm__isnull=False),
        ),
    )


def _safety() -> tuple[Table, ...]:
    a = AdverseEvent
    events = (
        col(a, "term__meddra_code", "meddra_code"),
        col(a, "term__term", "term"),
        col(a, "term__soc", "soc"),
        *_cols(a, "term_detail grade onset_on resolved_on attribution_sbrt attribution_systemic"),
        col(a, "attribution_study_drug", hidden=ARM),  # names the arm given the study drug
        *_cols(a, " ".join(("serious", *AdverseEvent.SAE_CRITERIA))),
        *_cols(a, "action outcome death_on dlt dlt_rule"),
    )
    r = LabResult
    labs = (
        *_cols(r, "sampled_on analyte value unit"),
        col(r, "value_standard", description=_("value in the standard unit")),
        col(r, "standard_unit", description=_("standard unit")),
        col(r, "lln", description=_("lower limit of normal")),
        col(r, "uln", description=_("upper limit of normal")),
        col(r, "range_unit", description=_("unit of the normal range")),
        col(r, "ctcae_term", description=_("CTCAE term")),
        col(r, "grade"),
        col(r, "grade_rule", description=_("grading rule applied")),
        col(r, "grade_problem", description=_("why no grade was computed")),
    )
    return (
        Table(
            "adverse_events", _("Adverse events"), a, "patient", events, SAFETY, order=("onset_on",)
        ),
        Table(
            "labs",
            _("Laboratory results"),
            r,
            "patient",
            labs,
            SAFETY,
            order=("sampled_on", "analyte"),
        ),
    )


def _schedule() -> tuple[Table, ...]:
    v = PlannedVisit
    visits = (
        col(v, "definition__code", "visit_code"),
        col(v, "definition__name", "visit_name"),
        col(v, "definition__kind", "visit_kind"),
        *_cols(v, "occurrence due_on window_start window_end state done_on done_form"),
        col(v, "missed_reason"),
    )
    p = Patient
    off_study = (
        col(p, "status_changed_on", "off_study_on", description=_("date off study")),
        col(p, "off_study_reason"),
    )
    return (
        Table(
            "planned_visits",
            _("Planned visits"),
            v,
            "patient",
            visits,
            SCHEDULE,
            order=("due_on", "definition__code"),
        ),
        Table(
            "off_study",
            _("Off study"),
            p,
            "",
            off_study,
            END,
            repeating=False,
            where=Q(status=Patient.Status.OFF_STUDY),
        ),
    )


@cache
def all_tables() -> tuple[Table, ...]:
    """Every form type, in the order of the files and of the ODM forms (defined once per
    process: the definitions are constant, their descriptions and labels translated when
    written)."""
    return (
        _patients(),
        *_screening(),
        *_scans(),
        *_responses(),
        *_sbrt(),
        *_systemic(),
        *_safety(),
        *_schedule(),
    )


@dataclass(frozen=True)
class Prepared:
    """A table as one export writes it: visible columns and their codes in the language."""

    table: Table
    columns: tuple[Column, ...]
    codes: dict[str, dict[str, str]]  # column name -> code -> label

    @property
    def name(self) -> str:
        return self.table.name


def prepare(ctx: ExportContext) -> list[Prepared]:
    """The tables of this export (blinding applied), with code labels in the requester's
    language (call inside ``translation.override``)."""
    prepared = []
    language = translation.get_language()
    for table in all_tables():
        if table.hidden_by and ctx.hides(table.hidden_by):
            continue
        columns = tuple(c for c in table.columns if not (c.hidden_by and ctx.hides(c.hidden_by)))
        codes = {c.name: _labels(c.codes, ctx, language) for c in columns if c.codes is not None}
        prepared.append(Prepared(table, columns, codes))
    return prepared


def _labels(codes: Codes, ctx: ExportContext, language: str) -> dict[str, str]:
    """Code -> label in the active language (``language``)."""
    if isinstance(codes, StaticCodes):
        return dict(_static_labels(codes, language))
    return {code: str(label) for code, label in codes(ctx).items()}


@lru_cache(maxsize=1024)
def _static_labels(codes: StaticCodes, language: str) -> dict[str, str]:
    """Labels of codes that are the same in every export, translated once per language (the
    codes are constant: kept, with the table definitions, for the life of the process)."""
    return {code: str(label) for code, label in codes.codes.items()}
