"""Data exports (issue #8 item 6): CSV round trip, ODM 1.3.2 parsed back, SDTM-style domains equal
to the engine's responses, blinded exports, and the export pages' access rules."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from lesions import services as lesion_services
from lesions.models import PatientResponse, TimepointResult
from lesions.services import LesionRow, MeasurementRow
from patients.ctcae_terms import ensure_terms as ensure_ctcae_terms
from patients.models import (
    AdverseEvent,
    Allocation,
    Consent,
    CtcaeTerm,
    EligibilityFacts,
    LabResult,
    Patient,
    PlannedVisit,
)
from studies.audit import event_model_for, reason_for_change
from studies.export_tasks import run_export
from studies.exports import ExportNotAllowed, export_path, export_study, writer
from studies.exports.sources import KEY_COLUMNS, make_context
from studies.exports.tables import all_tables, prepare
from studies.models import Arm, ExportJob, Membership, VisitDefinition
from studies.roles import Role
from tests.factories import MembershipFactory, UserFactory
from treatments.models import (
    Agent,
    DrugCycle,
    DrugRegimen,
    Fraction,
    LineAgent,
    Prescription,
    RadiotherapyCourse,
    SystemicLine,
)

pytestmark = pytest.mark.django_db

D = Decimal
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


def today() -> date:
    return timezone.localdate()


def ago(days: int) -> date:
    return today() - timedelta(days=days)


# --- a small trial's data -------------------------------------------------------------------------


def tumour_history(patient: Patient, by) -> None:
    """Baseline, a partial response, then progression, through the real response engine."""
    rows = [
        LesionRow("T1", "lung", False, "target", D("30"), planned_for_sbrt=True),
        LesionRow("T2", "liver", False, "target", D("16")),
        LesionRow("NT1", "bone", False, "non_target", None),
    ]
    lesion_services.baseline_record(
        patient=patient, scan_date=ago(120), modality="CT", rows=rows, by=by
    )
    lesions = {le.label: le.pk for le in patient.lesions.all()}
    for days, t1, t2 in ((60, "20", "10"), (10, "40", "20")):
        lesion_services.assessment_record(
            patient=patient,
            by=by,
            scan_date=ago(days),
            modality="CT",
            non_target_status="NON_CR_NON_PD",
            new_lesions="NO",
            measurements={
                lesions["T1"]: MeasurementRow("present", D(t1)),
                lesions["T2"]: MeasurementRow("present", D(t2)),
            },
        )


def sbrt(patient: Patient, *, dose: str, fractions: int) -> RadiotherapyCourse:
    course = RadiotherapyCourse.objects.create(
        patient=patient, technique="truebeam", planned_start=ago(100), planned_end=ago(96)
    )
    lesion = patient.lesions.order_by("label").first()
    if lesion is None:
        lesion = patient.lesions.create(label="T1", organ="lung", category="target")
    Prescription.objects.create(
        course=course,
        lesion=lesion,
        total_dose_gy=D(dose) * fractions,
        fractions=fractions,
        dose_per_fraction_gy=D(dose),
    )
    for number in range(1, fractions + 1):
        Fraction.objects.create(course=course, number=number, day=ago(101 - number))
    return course


def safety(patient: Patient) -> None:
    ensure_ctcae_terms()
    AdverseEvent.objects.create(
        patient=patient,
        term=CtcaeTerm.objects.get(term="Pneumonitis"),
        grade=3,
        onset_on=ago(30),
        attribution_sbrt="probable",
        attribution_systemic="unrelated",
        attribution_study_drug="possible",
        serious=True,
        sae_hospitalisation=True,
        outcome="recovering",
    )
    for days, value in ((50, "0.8"), (20, "1.2")):
        LabResult.objects.create(
            patient=patient,
            sampled_on=ago(days),
            analyte="lymphocytes",
            value=D(value),
            unit="G/L",
            value_standard=D(value),
            standard_unit="10^9/L",
            lln=D("1.0"),
            uln=D("4.0"),
            range_unit="G/L",
            ctcae_term="Lymphocyte count decreased",
            grade=2 if value == "0.8" else None,
        )


@pytest.fixture
def trial(world):
    """S1 (open): patient A allocated to arm A (iRECIST) with the whole casebook; patient B only
    screened data. S2 (double-blind): patient C in arm A with SBRT and an arm-A-only study drug;
    a blinded data manager of S2 (bea)."""
    alice = world.user("alice_pi")
    arm_a1 = Arm.objects.get(study=world.s1, code="A")
    arm_a1.uses_irecist = True
    arm_a1.save()
    Allocation.objects.create(
        patient=world.patient_a, arm=arm_a1, part=Allocation.Part.RANDOMISED, allocated_by=alice
    )
    EligibilityFacts.objects.create(patient=world.patient_a, ecog=1, liver_metastases=False)
    Consent.objects.create(
        patient=world.patient_a, consented_on=ago(130), form_version="v2", obtained_by=alice
    )
    tumour_history(world.patient_a, alice)
    sbrt(world.patient_a, dose="9", fractions=3)
    safety(world.patient_a)
    line = SystemicLine.objects.create(patient=world.patient_a, line_number=1, start=ago(200))
    for name in ("Sunitinib", "Avelumab"):
        agent, _ = Agent.objects.get_or_create(name=name, defaults={"drug_class": "other"})
        LineAgent.objects.create(line=line, agent=agent)
    definition = VisitDefinition.objects.create(
        study=world.s1,
        code="ct",
        name="CT scan",
        kind="imaging",
        anchor="enrolment",
        offset_days=90,
    )
    PlannedVisit.objects.create(
        patient=world.patient_a,
        definition=definition,
        due_on=ago(5),
        window_start=ago(12),
        window_end=ago(-2),
    )
    world.patient_b.status = Patient.Status.OFF_STUDY
    world.patient_b.status_changed_on = ago(3)
    world.patient_b.off_study_reason = Patient.OffStudyReason.CONSENT_WITHDRAWN
    world.patient_b.save()
    # S2, double-blind: 8 Gy x 1 reveals the arm, so does the arm-A-only study drug.
    pete = world.user("pete_planner")
    arm_a2 = Arm.objects.get(study=world.s2, code="A")
    arm_a2.name = "Eight gray arm"
    arm_a2.save()
    Allocation.objects.create(
        patient=world.patient_c, arm=arm_a2, part=Allocation.Part.RANDOMISED, allocated_by=pete
    )
    sbrt(world.patient_c, dose="8", fractions=1)
    safety(world.patient_c)
    agent, _ = Agent.objects.get_or_create(
        name="Atezolizumab", defaults={"drug_class": "anti_pdl1"}
    )
    regimen = DrugRegimen.objects.create(
        study=world.s2,
        arm=arm_a2,
        agent=agent,
        dose=D("1200"),
        dose_basis="flat",
        route="iv",
        cycle_length_days=21,
        max_cycles=6,
    )
    DrugCycle.objects.create(
        patient=world.patient_c,
        regimen=regimen,
        number=1,
        planned_on=ago(90),
        given_on=ago(90),
        planned_daily_mg=D("1200"),
        planned_total_mg=D("1200"),
        given_total_mg=D("1200"),
        status="given",
    )
    bea = UserFactory(username="bea_blinded_dm", is_staff=True)
    MembershipFactory(user=bea, study=world.s2, role=Role.DATA_MANAGER, blinded=True)
    world.users["bea_blinded_dm"] = bea
    return world


@pytest.fixture
def export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


def run(study, user, fmt: str, tmp_path, *, language="en", include_audit=False, blinded=False):
    path = tmp_path / f"{user.username}-{fmt}.{'xml' if fmt == 'odm' else 'zip'}"
    rows = export_study(
        study, user, fmt, path, blinded=blinded, include_audit=include_audit, language=language
    )
    return path, rows


def read_zip(path) -> dict[str, list[dict]]:
    with zipfile.ZipFile(path) as zf:
        return {
            name.removesuffix(".csv"): list(
                csv.DictReader(io.TextIOWrapper(zf.open(name), encoding="utf-8", newline=""))
            )
            for name in zf.namelist()
        }


# --- CSV ------------------------------------------------------------------------------------------


def _db_value(obj, lookup: str):
    if lookup == "agent_names":
        names = sorted(la.agent.name for la in obj.line_agents.all())
        return "; ".join(names) or None
    for part in lookup.split("__"):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _parsed(text: str, kind: str):
    if text == "":
        return None
    return {
        "integer": int,
        "float": Decimal,
        "date": date.fromisoformat,
        "boolean": lambda t: t == "1",
        "datetime": datetime.fromisoformat,
    }.get(kind, str)(text)


def _expected(db_value, kind: str):
    if kind == "text" and db_value == "":
        return None  # an empty text and a missing one read back alike
    if hasattr(db_value, "pk"):
        return db_value.pk
    return db_value


def test_the_csv_export_reads_back_equal_to_the_database(trial, tmp_path):
    dora = trial.user("dora_datamanager")
    path, rows = run(trial.s1, dora, "csv", tmp_path)
    files = read_zip(path)
    ctx = make_context(trial.s1, dora, blinded=False)
    checked = 0
    for prepared in prepare(ctx):
        table, lines = prepared.table, files[prepared.name]
        manager = table.model._default_manager
        scope = {f"{table.patient}__study_site__study": trial.s1} if table.patient else {}
        expected = manager.filter(**scope) if table.patient else ctx.patients()
        if table.where is not None:
            expected = expected.filter(table.where)
        assert sorted(int(line["record_id"]) for line in lines) == sorted(
            expected.values_list("pk", flat=True)
        ), prepared.name
        for line in lines:
            obj = manager.get(pk=line["record_id"])
            patient = obj if not table.patient else _db_value(obj, table.patient)
            assert line["subject_id"] == (patient.subject_id or "")
            assert line["site"] == patient.study_site.number
            for column in prepared.columns:
                value = _expected(_db_value(obj, column.lookup.removesuffix("_id")), column.type)
                assert _parsed(line[column.name], column.type) == value, (prepared.name, column)
                checked += 1
    data_rows = sum(len(lines) for name, lines in files.items() if name != "data_dictionary")
    assert checked > 200 and rows == data_rows
    # Labels follow their codes; nothing of S2 is in S1's export.
    patients = {line["subject_id"]: line for line in files["patients"]}
    assert patients["S1-01-001"]["status_label"] == "Enrolled"
    assert patients["S1-01-001"]["arm"] == "A" and patients["S1-01-001"]["arm_label"] == "Arm A"
    assert patients["S1-02-001"]["arm"] == "" and "S2-01-001" not in patients
    ae = files["adverse_events"][0]
    assert (ae["grade"], ae["serious"], ae["serious_label"]) == ("3", "1", "Yes")
    assert ae["attribution_sbrt"] == "probable" and ae["attribution_sbrt_label"] == "Probable"
    assert files["systemic_lines"][0]["agents"] == "Avelumab; Sunitinib"
    assert [line["subject_id"] for line in files["off_study"]] == ["S1-02-001"]


def test_the_data_dictionary_describes_every_column_of_every_file(trial, tmp_path):
    path, _rows = run(trial.s1, trial.user("tom_statistician"), "csv", tmp_path)
    files = read_zip(path)
    dictionary = files.pop("data_dictionary")
    described = {(row["file"], row["column"]) for row in dictionary}
    for name in files:
        with zipfile.ZipFile(path) as zf:
            header = next(csv.reader(io.TextIOWrapper(zf.open(f"{name}.csv"), encoding="utf-8")))
        assert {(f"{name}.csv", column) for column in header} <= described, name
    status = next(r for r in dictionary if (r["file"], r["column"]) == ("patients.csv", "status"))
    assert status["type"] == "text" and status["description"] == "status"
    assert "enrolled=Enrolled" in status["codes"] and "off_study=Off study" in status["codes"]
    key_names = [c.name for c in KEY_COLUMNS]
    assert [r["column"] for r in dictionary if r["file"] == "labs.csv"][:3] == key_names


def test_csv_labels_are_in_the_requesters_language(trial, tmp_path):
    path, _rows = run(trial.s1, trial.user("dora_datamanager"), "csv", tmp_path, language="fr")
    patients = {line["subject_id"]: line for line in read_zip(path)["patients"]}
    with translation.override("fr"):
        enrolled = str(Patient.Status.ENROLLED.label)
    assert enrolled != "Enrolled"
    assert patients["S1-01-001"]["status_label"] == enrolled


# --- ODM ------------------------------------------------------------------------------------------


def _odm(path) -> ET.Element:
    return ET.parse(path).getroot()  # noqa: S314 - our own file


def _q(tag: str) -> str:
    return f"{{{NS['odm']}}}{tag}"


def test_the_odm_file_parses_back_with_its_metadata_and_the_databases_values(trial, tmp_path):
    path, rows = run(trial.s1, trial.user("dora_datamanager"), "odm", tmp_path)
    root = _odm(path)
    assert root.tag == _q("ODM")
    assert (root.get("ODMVersion"), root.get("FileType")) == ("1.3.2", "Snapshot")
    assert [child.tag for child in root] == [_q("Study"), _q("AdminData"), _q("ClinicalData")]
    mdv = root.find("odm:Study/odm:MetaDataVersion", NS)
    order = [child.tag.split("}")[1] for child in mdv]
    assert order == sorted(
        order,
        key=["Protocol", "StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList"].index,
    )
    forms = {f.get("OID") for f in mdv.findall("odm:FormDef", NS)}
    items = {i.get("OID"): i for i in mdv.findall("odm:ItemDef", NS)}
    code_lists = {c.get("OID") for c in mdv.findall("odm:CodeList", NS)}
    assert {ref.get("CodeListOID") for ref in mdv.iterfind(".//odm:CodeListRef", NS)} <= code_lists
    assert items["IT.ADVERSE_EVENTS.GRADE"].get("DataType") == "integer"
    assert "IT.PATIENTS.ARM" in items and "F.SBRT_FRACTIONS" in forms
    locations = {loc.get("OID") for loc in root.iterfind("odm:AdminData/odm:Location", NS)}
    subjects = {s.get("SubjectKey"): s for s in root.iterfind(".//odm:SubjectData", NS)}
    assert set(subjects) == {"S1-01-001", "S1-02-001"}
    for subject in subjects.values():
        assert subject.find("odm:SiteRef", NS).get("LocationOID") in locations
    form_data = list(root.iterfind(".//odm:FormData", NS))
    assert rows == len(form_data)
    assert {f.get("FormOID") for f in form_data} <= forms
    assert {i.get("ItemOID") for i in root.iterfind(".//odm:ItemData", NS)} <= set(items)
    # Values equal the database: every lab result, every adverse event grade.
    labs = [f for f in form_data if f.get("FormOID") == "F.LABS"]
    assert len(labs) == 2
    for form in labs:
        lab = LabResult.objects.get(pk=form.get("FormRepeatKey"))
        values = {i.get("ItemOID"): i.get("Value") for i in form.iterfind(".//odm:ItemData", NS)}
        assert Decimal(values["IT.LABS.VALUE"]) == lab.value
        assert values["IT.LABS.SAMPLED_ON"] == lab.sampled_on.isoformat()
        assert values["IT.LABS.ANALYTE"] == "lymphocytes"
    ae = next(f for f in form_data if f.get("FormOID") == "F.ADVERSE_EVENTS")
    grade = ae.find(".//odm:ItemData[@ItemOID='IT.ADVERSE_EVENTS.GRADE']", NS)
    assert grade.get("Value") == str(AdverseEvent.objects.get(pk=ae.get("FormRepeatKey")).grade)
    assert root.find(".//odm:AuditRecords", NS) is None


def test_odm_audit_records_come_from_the_audit_trail(trial, tmp_path):
    path, _rows = run(trial.s1, trial.user("dora_datamanager"), "odm", tmp_path, include_audit=True)
    root = _odm(path)
    records = root.findall("odm:ClinicalData/odm:AuditRecords/odm:AuditRecord", NS)
    users = {u.get("OID") for u in root.iterfind("odm:AdminData/odm:User", NS)}
    locations = {loc.get("OID") for loc in root.iterfind("odm:AdminData/odm:Location", NS)}
    assert {r.find("odm:UserRef", NS).get("UserOID") for r in records} <= users
    assert {r.find("odm:LocationRef", NS).get("LocationOID") for r in records} <= locations
    # One record per audited change of this study's forms: e.g. every lab result insert.
    lab_events = event_model_for(LabResult).objects.filter(patient__study_site__study=trial.s1)
    lab_records = [r for r in records if r.find("odm:SourceID", NS).text.startswith("F.LABS/")]
    assert len(lab_records) == lab_events.count() == 2
    scans = [r for r in records if r.find("odm:SourceID", NS).text.startswith("F.IMAGING_")]
    alice = trial.user("alice_pi")
    assert scans and all(
        r.find("odm:UserRef", NS).get("UserOID") == f"USR.{alice.pk}" for r in scans
    )
    assert {r.find("odm:ReasonForChange", NS).text for r in scans} >= {"baseline imaging"}


# --- SDTM -----------------------------------------------------------------------------------------


def test_sdtm_rs_equals_the_engines_timepoint_and_best_responses(trial, tmp_path):
    path, _rows = run(trial.s1, trial.user("tom_statistician"), "sdtm", tmp_path)
    rs = read_zip(path)["rs"]
    results = TimepointResult.objects.filter(assessment__patient=trial.patient_a)
    assert results.count() == 2  # the follow-up scans
    recist = {
        r["RSDTC"]: r["RSORRES"]
        for r in rs
        if (r["RSTESTCD"], r["RSCAT"]) == ("OVRLRESP", "RECIST 1.1")
    }
    irecist = {
        r["RSDTC"]: r["RSORRES"]
        for r in rs
        if (r["RSTESTCD"], r["RSCAT"]) == ("OVRLRESP", "iRECIST")
    }
    assert recist == {t.assessment.scan_date.isoformat(): t.overall for t in results if t.overall}
    assert irecist == {
        t.assessment.scan_date.isoformat(): t.irecist_overall for t in results if t.irecist_overall
    }
    assert set(recist.values()) >= {"PR", "PD"} and "iUPD" in irecist.values()
    response = PatientResponse.objects.get(patient=trial.patient_a)
    best = {r["RSCAT"]: r for r in rs if r["RSTESTCD"] == "BESTRSP"}
    assert best["RECIST 1.1"]["RSORRES"] == response.best_overall_response
    assert best["RECIST 1.1"]["RSDTC"] == response.best_response_on.isoformat()
    assert best["iRECIST"]["RSORRES"] == response.irecist_best_response
    assert {r["USUBJID"] for r in rs} == {"S1-S1-01-001"}
    assert [int(r["RSSEQ"]) for r in rs] == list(range(1, len(rs) + 1))


def test_sdtm_domains_carry_standard_variables_and_values(trial, tmp_path):
    domains = read_zip(run(trial.s1, trial.user("tom_statistician"), "sdtm", tmp_path)[0])
    assert set(domains) == {"dm", "ds", "tu", "tr", "rs", "ae", "lb", "ex"}
    dm = {r["SUBJID"]: r for r in domains["dm"]}
    assert dm["S1-01-001"]["ARMCD"] == "A" and dm["S1-01-001"]["ARM"] == "Arm A"
    assert dm["S1-01-001"]["RFICDTC"] == ago(130).isoformat()
    assert dm["S1-02-001"]["ARMNRS"] == "NOT ASSIGNED"
    ds = {(r["USUBJID"], r["DSDECOD"]) for r in domains["ds"]}
    assert {
        ("S1-S1-01-001", "INFORMED CONSENT OBTAINED"),
        ("S1-S1-01-001", "RANDOMIZED"),
        ("S1-S1-02-001", "WITHDRAWAL BY SUBJECT"),
    } <= ds
    (ae,) = domains["ae"]
    assert (ae["AEDECOD"], ae["AETOXGR"], ae["AESER"], ae["AESHOSP"]) == (
        "Pneumonitis",
        "3",
        "Y",
        "Y",
    )
    assert ae["AEBODSYS"] and ae["AESTDTC"] == ago(30).isoformat()
    lb = domains["lb"]
    assert [(r["LBTESTCD"], r["LBORRES"], r["LBTOXGR"]) for r in lb] == [
        ("LYM", "0.800", "2"),
        ("LYM", "1.200", ""),
    ]
    baseline = ago(120).isoformat()
    assert {r["TUDTC"] for r in domains["tu"]} == {baseline}  # non-targets: the baseline scan
    assert {r["TULNKID"]: r["TUORRES"] for r in domains["tu"]} == {
        "T1": "TARGET",
        "T2": "TARGET",
        "NT1": "NON-TARGET",
    }
    sums = [r["TRSTRESN"] for r in domains["tr"] if r["TRTESTCD"] == "SUMDIAM"]
    assert sums == ["30.0", "60.0"]
    ex = domains["ex"]
    assert [(r["EXTRT"], r["EXDOSE"], r["EXDOSU"]) for r in ex] == [("SBRT", "9.00", "Gy")] * 3


# --- blinding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "odm", "sdtm"])
def test_blinded_exports_of_the_double_blind_study_reveal_no_arm(trial, tmp_path, fmt):
    bea, una = trial.user("bea_blinded_dm"), trial.user("una_unblinded_stat")
    blinded_path, _ = run(trial.s2, bea, fmt, tmp_path)
    open_path, _ = run(trial.s2, una, fmt, tmp_path)

    def text_of(path) -> str:
        if fmt == "odm":
            return path.read_text(encoding="utf-8")
        with zipfile.ZipFile(path) as zf:
            return "\n".join(zf.read(name).decode() for name in zf.namelist())

    blinded, unblinded = text_of(blinded_path), text_of(open_path)
    revealing = [
        "Eight gray arm",
        "ATEZOLIZUMAB",
        "Atezolizumab",
        "total_dose_gy",
        "TOTAL_DOSE",
        "8.00",
        "ARMCD",
        "attribution_study_drug",
        "ATTRIBUTION_STUDY_DRUG",
        "sbrt_fractions",
        "SBRT_FRACTIONS",
    ]
    shown = [word for word in revealing if word in unblinded]
    assert len(shown) >= 4  # the unblinded export has them: the test would see a leak
    assert [word for word in revealing if word in blinded] == []
    assert "S2-01-001" in blinded  # the patient is there, without the arm


def test_a_blinded_sdtm_export_keeps_when_sbrt_started_but_not_its_dose(trial, tmp_path):
    domains = read_zip(run(trial.s2, trial.user("bea_blinded_dm"), "sdtm", tmp_path)[0])
    assert "ARM" not in domains["dm"][0] and domains["dm"][0]["SUBJID"] == "S2-01-001"
    (ex,) = domains["ex"]
    assert (ex["EXTRT"], ex["EXDOSE"], ex["EXSTDTC"], ex["EXENDTC"]) == (
        "SBRT",
        "",
        ago(100).isoformat(),
        "",
    )


def test_irecist_results_are_blinded_only_when_some_arms_use_irecist(trial):
    bea = trial.user("bea_blinded_dm")

    def columns(blinded: bool) -> set[str]:
        tables = prepare(make_context(trial.s2, bea, blinded=blinded))
        return {c.name for p in tables if p.name.endswith("responses") for c in p.columns}

    Arm.objects.filter(study=trial.s2, code="A").update(uses_irecist=True)
    assert "irecist_overall" not in columns(True) and "irecist_best_response" not in columns(True)
    assert {"irecist_overall", "irecist_best_response", "icpd_on"} <= columns(False)
    Arm.objects.filter(study=trial.s2).update(uses_irecist=True)  # every arm: reveals nothing
    assert {"irecist_overall", "irecist_best_response", "icpd_on"} <= columns(True)


def test_a_blinded_requester_gets_a_blinded_job_even_if_it_asked_otherwise(trial, tmp_path):
    path, _ = run(trial.s2, trial.user("bea_blinded_dm"), "csv", tmp_path, blinded=False)
    header = read_zip(path)["patients"][0]
    assert "arm" not in header and "allocated_at" in header


def test_blinded_audit_records_keep_who_and_when_but_not_reasons_of_arm_revealing_forms(
    trial, tmp_path
):
    prescription = Prescription.objects.get(course__patient=trial.patient_c)
    with reason_for_change(
        "Dose corrected to 8 Gy x 1 as per arm", user=trial.user("pete_planner").pk
    ):
        prescription.isodose_pct = 80
        prescription.save()
    with reason_for_change("Lab re-entered", user=trial.user("pete_planner").pk):
        LabResult.objects.filter(patient=trial.patient_c).update(unit="10^9/L")

    def reasons(user) -> set[str]:
        path, _rows = run(trial.s2, user, "odm", tmp_path, include_audit=True)
        root = _odm(path)
        return {r.text for r in root.iterfind(".//odm:AuditRecord/odm:ReasonForChange", NS)}

    assert {"Dose corrected to 8 Gy x 1 as per arm", "Lab re-entered"} <= reasons(
        trial.user("una_unblinded_stat")
    )
    blinded = reasons(trial.user("bea_blinded_dm"))
    assert "Lab re-entered" in blinded and not [r for r in blinded if "Gy" in r]


# --- the task, in process -------------------------------------------------------------------------


def test_the_task_writes_the_file_once_and_a_second_delivery_does_nothing(trial, export_dir):
    dora = trial.user("dora_datamanager")
    job = ExportJob.objects.create(requested_by=dora, study=trial.s1, format="csv", blinded=False)
    assert run_export(job.pk) == "done"
    job.refresh_from_db()
    final = export_path(job)
    assert (job.state, job.progress, job.file_path) == ("done", 100, final.name)
    assert job.rows > 10 and job.finished_at is not None and final.is_file()
    assert not list(export_dir.glob("*.part"))
    stamp = final.stat().st_mtime_ns
    assert run_export(job.pk) == "gone"
    assert final.stat().st_mtime_ns == stamp


def test_an_export_by_someone_who_lost_the_role_fails_with_a_message(trial, export_dir):
    dora = trial.user("dora_datamanager")
    job = ExportJob.objects.create(requested_by=dora, study=trial.s1, format="sdtm", blinded=False)
    Membership.objects.filter(user=dora).update(is_active=False)
    dora = type(dora).objects.get(pk=dora.pk)  # no cached scope
    assert run_export(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error == "You may no longer export this study." and not export_path(job).exists()
    with pytest.raises(ExportNotAllowed):
        export_study(trial.s1, dora, "csv", export_dir / "x.zip", blinded=True)


def test_progress_is_reported_while_the_rows_stream(trial, tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "REPORT_EVERY_SECONDS", 0)
    dora = trial.user("dora_datamanager")
    job = ExportJob.objects.create(requested_by=dora, study=trial.s1, format="csv")
    seen = []

    def report(percent: int, rows: int) -> None:
        seen.append((percent, rows))
        ExportJob.objects.filter(pk=job.pk).update(progress=percent, rows=rows)  # as the task

    rows = export_study(
        trial.s1, dora, "sdtm", tmp_path / "p.zip", blinded=False, report=report, chunk_size=2
    )
    percents = [p for p, _r in seen]
    assert len(seen) >= 5 and percents == sorted(percents)
    assert 0 <= percents[0] < percents[-1] < 100
    assert rows > 0 and ExportJob.objects.get(pk=job.pk).rows == seen[-1][1]


# --- pages ----------------------------------------------------------------------------------------


def _exports_url(study) -> str:
    return reverse("study_exports", kwargs={"study_pk": study.pk})


def test_the_export_pages_send_anonymous_users_to_the_login_page(trial, client):
    job = ExportJob.objects.create(
        requested_by=trial.user("dora_datamanager"), study=trial.s1, format="csv"
    )
    for url in (
        _exports_url(trial.s1),
        reverse("export_status", kwargs={"export_pk": job.pk}),
        reverse("export_download", kwargs={"export_pk": job.pk}),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"]


def test_only_export_roles_ask_for_an_export_and_nothing_is_saved_otherwise(trial, login):
    url = _exports_url(trial.s1)
    assert login(trial.user("pete_planner")).post(url, {"format": "csv"}).status_code == 404
    for name in ("alice_pi", "carl_monitor", "sam_sponsor"):
        client = login(trial.user(name))
        assert client.get(url).status_code == 403
        assert client.post(url, {"format": "csv"}).status_code == 403
    assert not ExportJob.objects.exists()


def test_a_data_manager_asks_for_an_export_and_it_is_logged(trial, login):
    dora = trial.user("dora_datamanager")
    client = login(dora)
    page = client.get(_exports_url(trial.s1))
    assert page.status_code == 200 and 'name="format"' in page.content.decode()
    response = client.post(_exports_url(trial.s1), {"format": "odm", "include_audit": "on"})
    job = ExportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("export_status", kwargs={"export_pk": job.pk})
    assert (job.requested_by, job.study, job.format, job.include_audit, job.blinded) == (
        dora,
        trial.s1,
        "odm",
        True,
        False,
    )
    status = client.get(reverse("export_status", kwargs={"export_pk": job.pk}))
    assert status.status_code == 200 and 'class="progress' in status.content.decode()
    state = client.get(reverse("export_status", kwargs={"export_pk": job.pk}), {"format": "json"})
    assert state.json() == {
        "state": "pending",
        "progress": 0,
        "rows": 0,
        "finished": False,
        "download": False,
    }
    # Not written yet: nothing to download.
    assert client.get(reverse("export_download", kwargs={"export_pk": job.pk})).status_code == 404


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "format", "Choose a format."),
        ({"format": "xls"}, "format", "Select a valid choice."),
        ({"format": "csv", "include_audit": "on"}, "include_audit", "only be included in an ODM"),
    ],
)
def test_bad_export_requests_get_a_clear_error_and_save_nothing(trial, login, data, field, message):
    response = login(trial.user("dora_datamanager")).post(_exports_url(trial.s1), data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not ExportJob.objects.exists()


def test_a_finished_export_is_downloaded_by_export_roles_who_may_see_it(trial, login, export_dir):
    dora = trial.user("dora_datamanager")
    job = ExportJob.objects.create(requested_by=dora, study=trial.s1, format="csv", blinded=False)
    run_export(job.pk)
    url = reverse("export_download", kwargs={"export_pk": job.pk})
    response = login(dora).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert 'attachment; filename="S1_csv_' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert "patients.csv" in zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert login(trial.user("tom_statistician")).get(url).status_code == 200  # same study, role
    assert login(trial.user("carl_monitor")).get(url).status_code == 403
    assert login(trial.user("alice_pi")).get(url).status_code == 403
    assert login(trial.user("pete_planner")).get(url).status_code == 404


def test_a_blinded_user_never_sees_an_unblinded_export_of_the_same_study(trial, login, export_dir):
    una, bea = trial.user("una_unblinded_stat"), trial.user("bea_blinded_dm")
    job = ExportJob.objects.create(requested_by=una, study=trial.s2, format="sdtm", blinded=False)
    run_export(job.pk)
    client = login(bea)
    for name in ("export_status", "export_download"):
        assert client.get(reverse(name, kwargs={"export_pk": job.pk})).status_code == 404
    page = client.get(_exports_url(trial.s2)).content.decode()
    assert reverse("export_download", kwargs={"export_pk": job.pk}) not in page
    assert 'data-testid="blinded-note"' in page
    # bea's own export is blinded and listed; una sees both.
    client.post(_exports_url(trial.s2), {"format": "csv"})
    mine = ExportJob.objects.get(requested_by=bea)
    assert mine.blinded
    assert (
        reverse("export_status", kwargs={"export_pk": mine.pk})
        in client.get(_exports_url(trial.s2)).content.decode()
    )
    una_page = login(una).get(_exports_url(trial.s2)).content.decode()
    assert reverse("export_download", kwargs={"export_pk": job.pk}) in una_page
    assert reverse("export_status", kwargs={"export_pk": mine.pk}) in una_page


def test_the_export_page_runs_the_same_queries_whatever_the_number_of_exports(
    trial, login, django_assert_max_num_queries
):
    dora = trial.user("dora_datamanager")
    client = login(dora)
    url = _exports_url(trial.s1)

    def log(n: int) -> None:
        ExportJob.objects.bulk_create(
            ExportJob(requested_by=dora, study=trial.s1, format="csv") for _ in range(n)
        )

    log(2)
    client.get(url)  # warm the session
    with django_assert_max_num_queries(12) as few:
        assert client.get(url).status_code == 200
    log(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_every_form_type_has_a_table(trial):
    names = [t.name for t in all_tables()]
    assert names == [
        "patients",
        "eligibility",
        "eligibility_answers",
        "consent",
        "lesions",
        "imaging_assessments",
        "measurements",
        "timepoint_responses",
        "patient_responses",
        "sbrt_courses",
        "sbrt_prescriptions",
        "sbrt_fractions",
        "systemic_lines",
        "drug_cycles",
        "adverse_events",
        "labs",
        "planned_visits",
        "off_study",
    ]
