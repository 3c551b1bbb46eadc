"""What every SDTM-style domain shares: variables, controlled terms, identifiers and --SEQ."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import F

from patients.models import Patient
from studies.exports.sources import ExportContext, by_patient, subject_key
from studies.exports.writer import Progress


def _variables(names: str) -> list[str]:
    return names.split()


IDENTIFIERS = _variables("STUDYID DOMAIN USUBJID")
DM_ARM = _variables("ARMCD ARM ACTARMCD ACTARM")
#: The variables of each domain, in order.
COLUMNS = {
    "DM": IDENTIFIERS
    + _variables("SUBJID RFSTDTC RFICDTC RFXSTDTC DTHDTC DTHFL SITEID BRTHDTC AGE AGEU SEX")
    + DM_ARM
    + ["ARMNRS"],
    "DS": IDENTIFIERS + _variables("DSSEQ DSTERM DSDECOD DSCAT DSEPOCH DSSTDTC"),
    "TU": IDENTIFIERS
    + _variables("TUSEQ TULNKID TUTESTCD TUTEST TUORRES TUSTRESC TULOC TUMETHOD TUEVAL TUDTC"),
    "TR": IDENTIFIERS
    + _variables("TRSEQ TRLNKID TRTESTCD TRTEST TRORRES TRORRESU TRSTRESC TRSTRESN TRSTRESU")
    + _variables("TRMETHOD TREVAL TRDTC"),
    "RS": IDENTIFIERS + _variables("RSSEQ RSTESTCD RSTEST RSCAT RSORRES RSSTRESC RSEVAL RSDTC"),
    "AE": IDENTIFIERS
    + _variables("AESEQ AETERM AEDECOD AELLTCD AEBODSYS AETOXGR AESER AESDTH AESLIFE AESHOSP")
    + _variables("AESDISAB AESCONG AESMIE AEACN AEOUT AESTDTC AEENDTC"),
    "LB": IDENTIFIERS
    + _variables("LBSEQ LBTESTCD LBTEST LBORRES LBORRESU LBORNRLO LBORNRHI LBSTRESC LBSTRESN")
    + _variables("LBSTRESU LBTOX LBTOXGR LBDTC"),
    "EX": IDENTIFIERS
    + _variables("EXSEQ EXTRT EXCAT EXDOSE EXDOSU EXROUTE EXLOC EXLNKID EXSTDTC EXENDTC"),
}
RECIST, IRECIST_CAT = "RECIST 1.1", "iRECIST"

OFF_STUDY_TERMS = {
    Patient.OffStudyReason.COMPLETED: "COMPLETED",
    Patient.OffStudyReason.CONSENT_WITHDRAWN: "WITHDRAWAL BY SUBJECT",
    Patient.OffStudyReason.LOST_TO_FOLLOW_UP: "LOST TO FOLLOW-UP",
    Patient.OffStudyReason.DEATH: "DEATH",
    Patient.OffStudyReason.INVESTIGATOR_DECISION: "PHYSICIAN DECISION",
    Patient.OffStudyReason.SPONSOR_DECISION: "STUDY TERMINATED BY SPONSOR",
}
LAB_CODES = {
    "lymphocytes": ("LYM", "Lymphocytes"),
    "neutrophils": ("NEUT", "Neutrophils"),
    "platelets": ("PLAT", "Platelets"),
    "haemoglobin": ("HGB", "Hemoglobin"),
    "leukocytes": ("WBC", "Leukocytes"),
    "creatinine": ("CREAT", "Creatinine"),
    "clearance": ("CREATCLR", "Creatinine Clearance"),
    "bilirubin": ("BILI", "Bilirubin"),
    "ast": ("AST", "Aspartate Aminotransferase"),
    "alt": ("ALT", "Alanine Aminotransferase"),
}
AE_ACTIONS = {
    "none": "DOSE NOT CHANGED",
    "dose_reduced": "DOSE REDUCED",
    "interrupted": "DRUG INTERRUPTED",
    "withdrawn": "DRUG WITHDRAWN",
    "na": "NOT APPLICABLE",
}
AE_OUTCOMES = {
    "recovered": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED",
    "sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
    "unknown": "UNKNOWN",
}
TUMOUR_STATES = {
    "present": "PRESENT",
    "disappeared": "ABSENT",
    "too_small": "TOO SMALL TO MEASURE",
    "not_evaluable": "NOT EVALUABLE",
    "split": "SPLIT",
    "coalesced": "MERGED",
}
LESION_CATEGORIES = {"target": "TARGET", "non_target": "NON-TARGET", "new": "NEW"}
ROUTES = {"oral": "ORAL", "iv": "INTRAVENOUS", "sc": "SUBCUTANEOUS"}


def std_response(code: str) -> str:
    """A stored response code as the CDISC term (RSSTRESC)."""
    return {"NON_CR_NON_PD": "NON-CR/NON-PD", "NON_iCR_NON_iUPD": "NON-iCR/NON-iUPD"}.get(
        code, code
    )


def yn(value: bool | None) -> str:
    return "" if value is None else ("Y" if value else "N")


class Domain:
    """Rows of one domain: identifiers and --SEQ filled in per subject."""

    def __init__(self, ctx: ExportContext, name: str) -> None:
        self.ctx, self.name = ctx, name
        self.studyid = ctx.study.code

    def usubjid(self, patient_id: int, subject_id: str | None, site: str) -> str:
        return f"{self.studyid}-{subject_key(subject_id, site, patient_id)}"

    def numbered(self, usubjid: str, rows: list[dict]) -> Iterator[dict]:
        for seq, row in enumerate(rows, 1):
            yield {
                "STUDYID": self.studyid,
                "DOMAIN": self.name,
                "USUBJID": usubjid,
                f"{self.name}SEQ": seq,
                **row,
            }


def patient_rows(
    ctx: ExportContext, qs, *fields: str, path: str = "patient", order: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict]]:
    """(patient id, row) ordered by patient; each row also has the patient's "subject" and
    "site" (number)."""
    rows = (
        qs.order_by(f"{path}_id", *order, "pk")
        .values(
            *fields,
            pid=F(f"{path}_id"),
            subject=F(f"{path}__subject_id"),
            site=F(f"{path}__study_site__number"),
        )
        .iterator(chunk_size=ctx.chunk_size)
    )
    return ((row["pid"], row) for row in rows)


def in_scope(ctx: ExportContext, model, path: str = "patient"):
    return model._default_manager.filter(**{f"{path}__in": ctx.patients()})


def per_subject(ctx, domain: str, stream: Iterator[dict], progress: Progress, build) -> Iterator:
    """One subject at a time from one stream ordered by patient: ``build(rows) -> list[dict]``."""
    d = Domain(ctx, domain)
    for patient_id, groups in by_patient({"rows": stream}):
        rows = [row for _pid, row in groups["rows"]]
        progress.add(len(rows))
        yield from d.numbered(
            d.usubjid(patient_id, rows[0]["subject"], rows[0]["site"]), build(rows)
        )


def first_usubjid(d: Domain, patient_id: int, groups: dict[str, list]) -> str:
    first = next(rows[0][1] for rows in groups.values() if rows)
    return d.usubjid(patient_id, first["subject"], first["site"])
