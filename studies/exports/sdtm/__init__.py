"""CDISC SDTM-style datasets (a zip of CSV files): DM, DS, TU, TR, RS, AE, LB, EX.

"SDTM-style": standard domain and variable names, ISO 8601 ``--DTC`` dates and CDISC controlled
terms where the data map onto them, not a submission package (no define.xml, no SUPP-- domains,
no trial design domains). Each domain is read with streamed queries; domains built from several
tables merge them patient by patient (``sources.by_patient``), so ``--SEQ`` restarts per subject
and memory holds one subject at a time.

RS holds what the response engine stored: every ``TimepointResult`` (target, non-target, new
lesions and overall response for RECIST 1.1, overall response for iRECIST) and every
``PatientResponse`` (best overall response), the codes in ``RSORRES`` as stored and in
``RSSTRESC`` as CDISC terms.

Blinded exports: no ARM/ARMCD/ACTARM/ACTARMCD in DM; SBRT exposure is one record per course with
its first day only (no dose, no fraction count, no last day); cycles of a study drug given in one
arm only are left out; iRECIST records are left out when only some arms use iRECIST.
"""

from __future__ import annotations

from typing import BinaryIO

from lesions.models import Lesion, Measurement, PatientResponse, TimepointResult
from patients.models import AdverseEvent, LabResult
from studies.exports.sdtm.common import COLUMNS, DM_ARM, in_scope
from studies.exports.sdtm.safety import ae_rows, lb_rows
from studies.exports.sdtm.subjects import dm_rows, ds_rows, ex_rows
from studies.exports.sdtm.tumour import rs_rows, tr_rows, tu_rows
from studies.exports.sources import ARM, ExportContext
from studies.exports.writer import Progress, open_zip, zip_csv
from treatments.models import DrugCycle, Fraction

DOMAINS = {
    "DM": dm_rows,
    "DS": ds_rows,
    "TU": tu_rows,
    "TR": tr_rows,
    "RS": rs_rows,
    "AE": ae_rows,
    "LB": lb_rows,
    "EX": ex_rows,
}


def _source_count(ctx: ExportContext) -> int:
    """Rows read, for the progress bar (an estimate: each source row counts once)."""
    patients = ctx.patients().count()
    return (
        2 * patients
        + in_scope(ctx, Lesion).count()
        + in_scope(ctx, Measurement, "assessment__patient").count()
        + 2 * in_scope(ctx, TimepointResult, "assessment__patient").count()
        + in_scope(ctx, PatientResponse).count()
        + in_scope(ctx, AdverseEvent).count()
        + in_scope(ctx, LabResult).count()
        + in_scope(ctx, Fraction, "course__patient").count()
        + in_scope(ctx, DrugCycle).count()
    )


def columns_for(ctx: ExportContext, domain: str) -> list[str]:
    columns = COLUMNS[domain]
    if domain == "DM" and ctx.hides(ARM):
        columns = [c for c in columns if c not in DM_ARM]
    return columns


def write_sdtm(ctx: ExportContext, out: BinaryIO, report=None) -> int:
    """Write the zip of domains to ``out``; returns the number of records written."""
    progress = Progress(_source_count(ctx), report)
    written = 0
    with open_zip(out) as zf:
        for domain, rows in DOMAINS.items():
            columns = columns_for(ctx, domain)
            with zip_csv(zf, f"{domain.lower()}.csv") as writer:
                writer.writerow(columns)
                for row in rows(ctx, progress):
                    writer.writerow([row.get(c, "") for c in columns])
                    written += 1
    return written
