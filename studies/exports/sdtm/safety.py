"""Safety: adverse events (AE) and laboratory results (LB)."""

from __future__ import annotations

from collections.abc import Iterator

from patients.models import AdverseEvent, LabResult
from studies.exports.sdtm.common import (
    AE_ACTIONS,
    AE_OUTCOMES,
    LAB_CODES,
    in_scope,
    patient_rows,
    per_subject,
    yn,
)
from studies.exports.sources import (
    ExportContext,
    fmt,
)
from studies.exports.writer import Progress

# --- AE, LB ---------------------------------------------------------------------------------------


def ae_rows(ctx: ExportContext, progress: Progress) -> Iterator[dict]:
    stream = patient_rows(
        ctx,
        in_scope(ctx, AdverseEvent),
        "term__term",
        "term__soc",
        "term__meddra_code",
        "term_detail",
        "grade",
        "serious",
        *AdverseEvent.SAE_CRITERIA,
        "action",
        "outcome",
        "onset_on",
        "resolved_on",
        order=("onset_on",),
    )

    def build(rows):
        return [
            {
                "AETERM": a["term_detail"] or a["term__term"],
                "AEDECOD": a["term__term"],
                "AELLTCD": a["term__meddra_code"],
                "AEBODSYS": a["term__soc"],
                "AETOXGR": a["grade"],
                "AESER": yn(a["serious"]),
                "AESDTH": yn(a["sae_death"]) if a["serious"] else "",
                "AESLIFE": yn(a["sae_life_threatening"]) if a["serious"] else "",
                "AESHOSP": yn(a["sae_hospitalisation"]) if a["serious"] else "",
                "AESDISAB": yn(a["sae_disability"]) if a["serious"] else "",
                "AESCONG": yn(a["sae_congenital"]) if a["serious"] else "",
                "AESMIE": yn(a["sae_other"]) if a["serious"] else "",
                "AEACN": AE_ACTIONS.get(a["action"], ""),
                "AEOUT": AE_OUTCOMES.get(a["outcome"], ""),
                "AESTDTC": fmt(a["onset_on"]),
                "AEENDTC": fmt(a["resolved_on"]),
            }
            for a in rows
        ]

    return per_subject(ctx, "AE", stream, progress, build)


def lb_rows(ctx: ExportContext, progress: Progress) -> Iterator[dict]:
    stream = patient_rows(
        ctx,
        in_scope(ctx, LabResult),
        "sampled_on",
        "analyte",
        "value",
        "unit",
        "lln",
        "uln",
        "value_standard",
        "standard_unit",
        "ctcae_term",
        "grade",
        order=("sampled_on", "analyte"),
    )

    def build(rows):
        out = []
        for r in rows:
            code, test = LAB_CODES.get(r["analyte"], (r["analyte"].upper()[:8], r["analyte"]))
            out.append(
                {
                    "LBTESTCD": code,
                    "LBTEST": test,
                    "LBORRES": fmt(r["value"]),
                    "LBORRESU": r["unit"],
                    "LBORNRLO": fmt(r["lln"]),
                    "LBORNRHI": fmt(r["uln"]),
                    "LBSTRESC": fmt(r["value_standard"]),
                    "LBSTRESN": fmt(r["value_standard"]),
                    "LBSTRESU": r["standard_unit"],
                    "LBTOX": r["ctcae_term"],
                    "LBTOXGR": fmt(r["grade"]),
                    "LBDTC": fmt(r["sampled_on"]),
                }
            )
        return out

    return per_subject(ctx, "LB", stream, progress, build)
