"""Tumours: identification (TU), results (TR) and responses (RS, RECIST 1.1 and iRECIST)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from lesions.models import (
    ImagingAssessment,
    Lesion,
    Measurement,
    PatientResponse,
    TimepointResult,
)
from studies.exports.sdtm.common import (
    IRECIST_CAT,
    LESION_CATEGORIES,
    RECIST,
    TUMOUR_STATES,
    Domain,
    first_usubjid,
    in_scope,
    patient_rows,
    per_subject,
    std_response,
)
from studies.exports.sources import (
    IRECIST,
    ExportContext,
    by_patient,
    fmt,
)
from studies.exports.writer import Progress

# --- TU, TR, RS ---------------------------------------------------------------------------------


def tu_rows(ctx: ExportContext, progress: Progress) -> Iterator[dict]:
    """One record per lesion, dated by its first measurement (non-target lesions, which have
    none, by the baseline scan)."""
    first = Measurement.objects.filter(lesion=OuterRef("pk")).order_by("assessment__scan_date")
    baseline = ImagingAssessment.objects.filter(patient=OuterRef("patient"), is_baseline=True)
    qs = in_scope(ctx, Lesion).annotate(
        first_scan=Coalesce(
            Subquery(first.values("assessment__scan_date")[:1]),
            Subquery(baseline.values("scan_date")[:1]),
        ),
        first_modality=Coalesce(
            Subquery(first.values("assessment__modality")[:1]),
            Subquery(baseline.values("modality")[:1]),
        ),
    )
    stream = patient_rows(
        ctx, qs, "label", "organ", "category", "first_scan", "first_modality", order=("label",)
    )

    def build(rows):
        return [
            {
                "TULNKID": r["label"],
                "TUTESTCD": "TUMIDENT",
                "TUTEST": "Tumor Identification",
                "TUORRES": LESION_CATEGORIES.get(r["category"], r["category"].upper()),
                "TUSTRESC": LESION_CATEGORIES.get(r["category"], r["category"].upper()),
                "TULOC": r["organ"].upper(),
                "TUMETHOD": r["first_modality"] or "",
                "TUEVAL": "INVESTIGATOR",
                "TUDTC": fmt(r["first_scan"]),
            }
            for r in rows
        ]

    return per_subject(ctx, "TU", stream, progress, build)


def _tr_measurement(m: dict) -> list[dict]:
    common = {
        "TRLNKID": m["lesion__label"],
        "TRMETHOD": m["assessment__modality"],
        "TREVAL": "INVESTIGATOR",
        "TRDTC": fmt(m["assessment__scan_date"]),
    }
    rows = []
    if m["diameter_mm"] is not None:
        node = m["lesion__is_node"]
        value = fmt(m["diameter_mm"])
        rows.append(
            {
                **common,
                "TRTESTCD": "SAXIS" if node else "LDIAM",
                "TRTEST": "Short Axis" if node else "Longest Diameter",
                "TRORRES": value,
                "TRORRESU": "mm",
                "TRSTRESC": value,
                "TRSTRESN": value,
                "TRSTRESU": "mm",
            }
        )
    state = TUMOUR_STATES.get(m["state"], m["state"].upper())
    rows.append(
        {
            **common,
            "TRTESTCD": "TUMSTATE",
            "TRTEST": "Tumor State",
            "TRORRES": state,
            "TRSTRESC": state,
        }
    )
    return rows


SUMS = (
    ("sum_mm", "SUMDIAM", "Sum of Diameter", "mm"),
    ("change_from_baseline_pct", "PCBSD", "Percent Change From Baseline in Sum of Diameter", "%"),
    ("change_from_nadir_pct", "PCNSD", "Percent Change From Nadir in Sum of Diameter", "%"),
)


def _tr_result(r: dict) -> list[dict]:
    rows = []
    for field, code, test, unit in SUMS:
        if r[field] is None:
            continue
        value = fmt(r[field])
        rows.append(
            {
                "TRTESTCD": code,
                "TRTEST": test,
                "TRORRES": value,
                "TRORRESU": unit,
                "TRSTRESC": value,
                "TRSTRESN": value,
                "TRSTRESU": unit,
                "TRMETHOD": r["assessment__modality"],
                "TREVAL": "INVESTIGATOR",
                "TRDTC": fmt(r["assessment__scan_date"]),
            }
        )
    return rows


def _results(ctx: ExportContext) -> Iterator[tuple[int, dict]]:
    return patient_rows(
        ctx,
        in_scope(ctx, TimepointResult, "assessment__patient"),
        "assessment__scan_date",
        "assessment__modality",
        "sum_mm",
        "change_from_baseline_pct",
        "change_from_nadir_pct",
        "target",
        "non_target",
        "new_lesions",
        "overall",
        "irecist_overall",
        path="assessment__patient",
        order=("assessment__scan_date",),
    )


def tr_rows(ctx: ExportContext, progress: Progress) -> Iterator[dict]:
    d = Domain(ctx, "TR")
    measurements = patient_rows(
        ctx,
        in_scope(ctx, Measurement, "assessment__patient"),
        "assessment__scan_date",
        "assessment__modality",
        "lesion__label",
        "lesion__is_node",
        "state",
        "diameter_mm",
        path="assessment__patient",
        order=("assessment__scan_date", "lesion__label"),
    )
    for patient_id, groups in by_patient({"m": measurements, "r": _results(ctx)}):
        rows = [row for _p, m in groups["m"] for row in _tr_measurement(m)]
        rows += [row for _p, r in groups["r"] for row in _tr_result(r)]
        rows.sort(key=lambda row: row["TRDTC"])  # stable: lesions, then sums, per scan
        progress.add(len(groups["m"]) + len(groups["r"]))
        yield from d.numbered(first_usubjid(d, patient_id, groups), rows)


def _rs(code: str, test: str, cat: str, value: str, day) -> dict:
    return {
        "RSTESTCD": code,
        "RSTEST": test,
        "RSCAT": cat,
        "RSORRES": value,
        "RSSTRESC": std_response(value),
        "RSEVAL": "INVESTIGATOR",
        "RSDTC": fmt(day),
    }


def _rs_timepoint(ctx: ExportContext, r: dict) -> list[dict]:
    day = r["assessment__scan_date"]
    rows = []
    if r["target"]:
        rows.append(_rs("TRGRESP", "Target Response", RECIST, r["target"], day))
    if r["non_target"]:
        rows.append(_rs("NTRGRESP", "Non-target Response", RECIST, r["non_target"], day))
    if r["new_lesions"]:
        new = _rs("NEWLIND", "New Lesion Indicator", RECIST, r["new_lesions"], day)
        new["RSSTRESC"] = {"NO": "N", "YES": "Y"}.get(r["new_lesions"], r["new_lesions"])
        rows.append(new)
    if r["overall"]:
        rows.append(_rs("OVRLRESP", "Overall Response", RECIST, r["overall"], day))
    if r["irecist_overall"] and not ctx.hides(IRECIST):
        rows.append(_rs("OVRLRESP", "Overall Response", IRECIST_CAT, r["irecist_overall"], day))
    return rows


def _rs_best(ctx: ExportContext, b: dict) -> list[dict]:
    rows = []
    if b["best_overall_response"]:
        rows.append(
            _rs(
                "BESTRSP",
                "Best Overall Response",
                RECIST,
                b["best_overall_response"],
                b["best_response_on"],
            )
        )
    if b["irecist_best_response"] and not ctx.hides(IRECIST):
        rows.append(
            _rs("BESTRSP", "Best Overall Response", IRECIST_CAT, b["irecist_best_response"], None)
        )
    return rows


def rs_rows(ctx: ExportContext, progress: Progress) -> Iterator[dict]:
    d = Domain(ctx, "RS")
    best = patient_rows(
        ctx,
        in_scope(ctx, PatientResponse),
        "best_overall_response",
        "best_response_on",
        "irecist_best_response",
    )
    for patient_id, groups in by_patient({"r": _results(ctx), "b": best}):
        rows = [row for _p, r in groups["r"] for row in _rs_timepoint(ctx, r)]
        rows += [row for _p, b in groups["b"] for row in _rs_best(ctx, b)]
        progress.add(len(groups["r"]) + len(groups["b"]))
        yield from d.numbered(first_usubjid(d, patient_id, groups), rows)
