"""Subjects: demographics (DM), disposition (DS) and exposure (EX: SBRT and the study drug)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import OuterRef, Subquery

from patients.models import Allocation, Consent, Patient
from studies.exports.sdtm.common import (
    OFF_STUDY_TERMS,
    ROUTES,
    Domain,
    first_usubjid,
    in_scope,
    patient_rows,
)
from studies.exports.sources import (
    ARM,
    ExportContext,
    by_patient,
    fmt,
)
from studies.exports.writer import Progress
from studies.models import Study
from treatments.models import DrugCycle, Fraction, Prescription, RadiotherapyCourse

# --- DM, DS ------------------------------------------------------------------------------------


def _patients(ctx: ExportContext, progress: Progress) -> Iterator[dict]:
    first_consent = Consent.objects.filter(patient=OuterRef("pk")).order_by("consented_on")
    first_fraction = Fraction.objects.filter(
        course__patient=OuterRef("pk"), status=Fraction.Status.DELIVERED
    ).order_by("day")
    rows = (
        ctx.patients()
        .annotate(
            rficdtc=Subquery(first_consent.values("consented_on")[:1]),
            rfxstdtc=Subquery(first_fraction.values("day")[:1]),
        )
        .order_by("pk")
        .values(
            "pk",
            "subject_id",
            "study_site__number",
            "screened_on",
            "screening_outcome",
            "sex",
            "year_of_birth",
            "age_at_consent",
            "enrolled_on",
            "status",
            "status_changed_on",
            "off_study_reason",
            "rficdtc",
            "rfxstdtc",
            "allocation__arm__code",
            "allocation__arm__name",
            "allocation__part",
            "allocation__allocated_at",
        )
        .iterator(chunk_size=ctx.chunk_size)
    )
    for row in rows:
        progress.add()
        yield row


def dm_rows(ctx: ExportContext, progress: Progress) -> Iterator[dict]:
    d = Domain(ctx, "DM")
    for p in _patients(ctx, progress):
        dead = p["off_study_reason"] == Patient.OffStudyReason.DEATH
        arm = p["allocation__arm__code"]
        row = {
            "STUDYID": d.studyid,
            "DOMAIN": "DM",
            "USUBJID": d.usubjid(p["pk"], p["subject_id"], p["study_site__number"]),
            "SUBJID": p["subject_id"] or "",
            "RFSTDTC": fmt(p["enrolled_on"]),
            "RFICDTC": fmt(p["rficdtc"]),
            "RFXSTDTC": fmt(p["rfxstdtc"]),
            "DTHDTC": fmt(p["status_changed_on"]) if dead else "",
            "DTHFL": "Y" if dead else "",
            "SITEID": p["study_site__number"],
            "BRTHDTC": fmt(p["year_of_birth"]),
            "AGE": fmt(p["age_at_consent"]),
            "AGEU": "YEARS" if p["age_at_consent"] is not None else "",
            "SEX": p["sex"] or "",
            "ARMNRS": _arm_not_assigned(p) if arm is None else "",
        }
        if not ctx.hides(ARM) and arm is not None:
            name = p["allocation__arm__name"]
            row.update(ARMCD=arm, ARM=name, ACTARMCD=arm, ACTARM=name)
        yield row


def _arm_not_assigned(p: dict) -> str:
    if p["screening_outcome"] in (Patient.ScreeningOutcome.SCREEN_FAILURE, "declined"):
        return "SCREEN FAILURE"
    return "NOT ASSIGNED"


def _allocation_term(ctx: ExportContext, part: str) -> str:
    if ctx.hides(ARM):  # the part (run-in or randomised) could name the arm: the design says it
        return "RANDOMIZED" if ctx.study.design == Study.Design.RANDOMISED else "ENROLLED"
    return "RANDOMIZED" if part == Allocation.Part.RANDOMISED else "ENROLLED"


def _ds_patient(ctx: ExportContext, p: dict) -> list[dict]:
    rows = []
    if p["screening_outcome"] == Patient.ScreeningOutcome.SCREEN_FAILURE:
        rows.append(_ds("SCREEN FAILURE", "DISPOSITION EVENT", "SCREENING", p["screened_on"]))
    elif p["screening_outcome"] == Patient.ScreeningOutcome.DECLINED:
        rows.append(
            _ds(
                "WITHDRAWAL BY SUBJECT",
                "DISPOSITION EVENT",
                "SCREENING",
                p["screened_on"],
                term="DECLINED PARTICIPATION",
            )
        )
    if p["allocation__allocated_at"] is not None:
        at = p["allocation__allocated_at"].astimezone(ctx.zone).date()
        term = _allocation_term(ctx, p["allocation__part"])
        rows.append(_ds(term, "PROTOCOL MILESTONE", "SCREENING", at))
    if p["status"] == Patient.Status.OFF_STUDY and p["off_study_reason"]:
        decod = OFF_STUDY_TERMS.get(p["off_study_reason"], "OTHER")
        rows.append(_ds(decod, "DISPOSITION EVENT", "", p["status_changed_on"]))
    return rows


def _ds(decod: str, cat: str, epoch: str, day, *, term: str = "") -> dict:
    return {
        "DSTERM": term or decod,
        "DSDECOD": decod,
        "DSCAT": cat,
        "DSEPOCH": epoch,
        "DSSTDTC": fmt(day),
    }


def ds_rows(ctx: ExportContext, progress: Progress) -> Iterator[dict]:
    d = Domain(ctx, "DS")
    patients = ((p["pk"], p) for p in _patients(ctx, progress))
    consents = patient_rows(
        ctx,
        in_scope(ctx, Consent),
        "consented_on",
        "withdrawn_on",
        "withdrawal_scope",
        order=("consented_on",),
    )
    for patient_id, groups in by_patient({"patient": patients, "consent": consents}):
        if not groups["patient"]:
            continue
        p = groups["patient"][0][1]
        rows = []
        for _pid, c in groups["consent"]:
            rows.append(
                _ds(
                    "INFORMED CONSENT OBTAINED",
                    "PROTOCOL MILESTONE",
                    "SCREENING",
                    c["consented_on"],
                )
            )
            if c["withdrawn_on"]:
                term = f"CONSENT WITHDRAWN ({c['withdrawal_scope'] or 'all'})".upper()
                rows.append(
                    _ds("WITHDRAWAL BY SUBJECT", "OTHER EVENT", "", c["withdrawn_on"], term=term)
                )
        rows.extend(_ds_patient(ctx, p))
        rows.sort(key=lambda r: r["DSSTDTC"])
        yield from d.numbered(d.usubjid(patient_id, p["subject_id"], p["study_site__number"]), rows)


# --- EX -----------------------------------------------------------------------------------------


def _ex_streams(ctx: ExportContext) -> dict[str, Iterator]:
    delivered = Fraction.Status.DELIVERED
    cycles = in_scope(ctx, DrugCycle).filter(given_on__isnull=False)
    if ctx.hides(ARM):
        cycles = cycles.exclude(regimen__arm__isnull=False)
        first = Fraction.objects.filter(course=OuterRef("pk"), status=delivered).order_by("day")
        courses = in_scope(ctx, RadiotherapyCourse).annotate(
            first_day=Subquery(first.values("day")[:1])
        )
        sbrt = {"course": patient_rows(ctx, courses, "number", "first_day", order=("number",))}
    else:
        fractions = in_scope(ctx, Fraction, "course__patient").filter(status=delivered)
        sbrt = {
            "fraction": patient_rows(
                ctx,
                fractions,
                "course_id",
                "day",
                path="course__patient",
                order=("course__number", "number"),
            ),
            "prescription": patient_rows(
                ctx,
                in_scope(ctx, Prescription, "course__patient"),
                "course_id",
                "lesion__label",
                "lesion__organ",
                "dose_per_fraction_gy",
                path="course__patient",
                order=("course__number", "lesion__label"),
            ),
        }
    drug = patient_rows(
        ctx,
        cycles,
        "regimen__agent__name",
        "regimen__route",
        "regimen__days_per_cycle",
        "given_on",
        "given_total_mg",
        order=("given_on", "regimen__agent__name"),
    )
    return {**sbrt, "cycle": drug}


def _ex_sbrt(groups: dict[str, list]) -> list[dict]:
    rows = []
    for _p, c in groups.get("course", ()):
        rows.append(
            {
                "EXTRT": "SBRT",
                "EXCAT": "RADIOTHERAPY",
                "EXLNKID": f"COURSE {c['number']}",
                "EXSTDTC": fmt(c["first_day"]),
            }
        )
    by_course: dict[int, list[dict]] = {}
    for _p, p in groups.get("prescription", ()):
        by_course.setdefault(p["course_id"], []).append(p)
    for _p, f in groups.get("fraction", ()):
        for p in by_course.get(f["course_id"], ()):
            day = fmt(f["day"])
            rows.append(
                {
                    "EXTRT": "SBRT",
                    "EXCAT": "RADIOTHERAPY",
                    "EXDOSE": fmt(p["dose_per_fraction_gy"]),
                    "EXDOSU": "Gy",
                    "EXLOC": p["lesion__organ"].upper(),
                    "EXLNKID": p["lesion__label"],
                    "EXSTDTC": day,
                    "EXENDTC": day,
                }
            )
    return rows


def _ex_drug(groups: dict[str, list]) -> list[dict]:
    rows = []
    for _p, c in groups.get("cycle", ()):
        end = c["given_on"] + timedelta(days=c["regimen__days_per_cycle"] - 1)
        rows.append(
            {
                "EXTRT": c["regimen__agent__name"].upper(),
                "EXCAT": "STUDY DRUG",
                "EXDOSE": fmt(c["given_total_mg"]),
                "EXDOSU": "mg",
                "EXROUTE": ROUTES.get(c["regimen__route"], ""),
                "EXSTDTC": fmt(c["given_on"]),
                "EXENDTC": fmt(end),
            }
        )
    return rows


def ex_rows(ctx: ExportContext, progress: Progress) -> Iterator[dict]:
    d = Domain(ctx, "EX")
    for patient_id, groups in by_patient(_ex_streams(ctx)):
        progress.add(sum(len(rows) for rows in groups.values()))
        yield from d.numbered(
            first_usubjid(d, patient_id, groups), _ex_sbrt(groups) + _ex_drug(groups)
        )
