"""Export values formatted by PostgreSQL (``studies/exports/sql.py``) read back exactly as stored.

Awkward values (commas, double and single quotes, CR/LF, tabs, leading and trailing spaces,
``<>&'"``, non-ASCII, empty strings, NULLs, long text, early dates, decimals, booleans, codes with
their labels in English and French, a code outside its list) are stored in real records of every
kind of form; the CSV and ODM exports must parse back (``csv``, ``xml.etree``) to exactly those
values, and be byte for byte what the Python formatting (``csv.writer``, ``quoteattr``) writes for
them. Any slip in the SQL quoting or escaping fails these tests.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest
from django.utils import translation

from lesions.models import Lesion
from patients.models import (
    AdverseEvent,
    Allocation,
    Consent,
    CtcaeTerm,
    EligibilityAnswer,
    EligibilityFacts,
    LabResult,
    Patient,
    PlannedVisit,
)
from studies.exports import csv_export, export_study, odm
from studies.exports.sources import (
    KEY_COLUMNS,
    ExportContext,
    fmt,
    make_context,
    subject_key,
    table_queryset,
)
from studies.exports.tables import Prepared, prepare
from studies.models import Arm, EligibilityCriterion, VisitDefinition
from treatments.models import Agent, Fraction, LineAgent, RadiotherapyCourse, SystemicLine

pytestmark = pytest.mark.django_db

#: Values that need quoting (CSV) or escaping (XML), or that a careless formatter changes.
AWKWARD = (
    "comma, inside",
    'double "quoted" word',
    "CR LF\r\ninside",
    "LF\ninside",
    "CR\rinside",
    "  leading and trailing  ",
    " ",
    "<>&'\"",
    '<tag attr="v">&amp;</tag>',
    "single 'quoted'",
    "tab\tinside",
    "é, µ and 日本",
    '",\r\n',
    '"',
    "",
    "=1+2; \\. \\N NULL",
)
#: A long text with every special character, many times over (an eligibility criterion).
LONG = "".join(f"{n}: é µ, \"q\" 'a' <b> & c\r\nd\te " for n in range(300))
DECIMALS = (
    Decimal("0.000"),
    Decimal("-1.500"),
    Decimal("123456789.123"),
    Decimal("0.001"),
    Decimal("100"),
)
#: Names of the agents of a line (written joined by PostgreSQL's string_agg).
AGENTS = ('Drug "X", 5%', "é-µ <&> 'y'", "tab\tname\r\n")
#: A code outside its field's choices (an old code, say): written with an empty label.
UNKNOWN_CODE = 'a,"b"\r\n'
START = date(2024, 1, 1)
EARLY = date(999, 12, 31)


def _records(world) -> None:
    """Awkward values in real records of S1: patient A has a casebook of them, patient B (site
    B) is off study."""
    alice = world.user("alice_pi")
    patient = world.patient_a
    patient.declined_reason = AWKWARD[0]
    patient.screening_number = '"S,1"\n'
    patient.save()
    Allocation.objects.create(
        patient=patient,
        arm=Arm.objects.get(study=world.s1, code="A"),
        part=Allocation.Part.RANDOMISED,
        stratum=AWKWARD[7],
        allocated_by=alice,
    )
    Patient.objects.filter(pk=world.patient_b.pk).update(
        status=Patient.Status.OFF_STUDY,
        status_changed_on=EARLY,
        off_study_reason=Patient.OffStudyReason.CONSENT_WITHDRAWN,
    )
    # Yes, no and unknown (NULL) booleans.
    EligibilityFacts.objects.create(
        patient=patient, liver_metastases=None, childbearing_potential=True, ecog=0
    )
    EligibilityFacts.objects.create(
        patient=world.patient_b, pregnancy_test_negative=False, restaging_on=EARLY
    )
    term = CtcaeTerm.objects.create(
        meddra_code=99_999_999, soc='Soc, "x" é', term="Pain, other\r\n<specify> & µ"
    )
    outcomes = [code for code, _label in AdverseEvent._meta.get_field("outcome").choices]
    attributed = [code for code, _label in AdverseEvent._meta.get_field("attribution_sbrt").choices]
    scopes = ["", *(code for code, _label in Consent.WithdrawalScope.choices)]
    analytes = [code for code, _label in LabResult._meta.get_field("analyte").choices]
    definitions = []
    for n, value in enumerate(AWKWARD):
        day = START + timedelta(days=n)
        AdverseEvent.objects.create(
            patient=patient,
            term=term,
            term_detail=value,
            grade=n % 5 + 1,
            onset_on=EARLY if n == 3 else day,
            resolved_on=None if n % 2 else day + timedelta(days=9),
            attribution_sbrt=attributed[n % len(attributed)],
            attribution_systemic=attributed[(n + 1) % len(attributed)],
            serious=bool(n % 2),
            sae_other=n % 3 == 0,
            outcome=outcomes[n % len(outcomes)],
            dlt=n % 4 == 0,
            dlt_rule=value,
        )
        LabResult.objects.create(
            patient=patient,
            sampled_on=day,
            analyte=analytes[n % len(analytes)],
            value=DECIMALS[n % len(DECIMALS)],
            unit=value[:15],
            value_standard=DECIMALS[(n + 1) % len(DECIMALS)],
            standard_unit=value[-15:],
            lln=None if n % 2 else Decimal("-0.125"),
            range_unit=value[:15],
            ctcae_term=value[:60],
            grade=None if n % 3 else n % 5,
            grade_rule=value,
            grade_problem=value,
        )
        Lesion.objects.create(
            patient=patient,
            label=f"{value[:7]}{n}",
            organ="lung",
            category="target",
            location=value,
            is_node=bool(n % 2),
        )
        Consent.objects.create(
            patient=patient,
            consented_on=day,
            form_version=value[:40],
            obtained_by=alice,
            withdrawal_scope=scopes[n % len(scopes)],
        )
        criterion = EligibilityCriterion.objects.create(
            study=world.s1, kind="inclusion", number=n + 1, text=LONG if n == 0 else value
        )
        EligibilityAnswer.objects.create(
            patient=patient,
            criterion=criterion,
            satisfied=bool(n % 2),
            computed_outcome=value[:10],
            computed_detail=value,
            answered_by=alice,
        )
        definitions.append(
            VisitDefinition.objects.create(
                study=world.s1,
                code=f"v{n}",
                name=value[:100],
                kind="imaging",
                anchor="enrolment",
                offset_days=n,
            )
        )
    for n, definition in enumerate(definitions):
        PlannedVisit.objects.create(
            patient=patient,
            definition=definition,
            due_on=START + timedelta(days=n),
            window_start=START,
            window_end=START + timedelta(days=30),
            missed_reason=AWKWARD[n],
            done_form=AWKWARD[n][:40],
        )
    # A code outside its list, and an empty one.
    first = AdverseEvent.objects.filter(patient=patient).order_by("pk").first()
    AdverseEvent.objects.filter(pk=first.pk).update(attribution_systemic=UNKNOWN_CODE, outcome="")
    course = RadiotherapyCourse.objects.create(
        patient=patient, technique="truebeam", planned_start=START, planned_end=None
    )
    for n, value in enumerate(AWKWARD):
        Fraction.objects.create(course=course, number=n + 1, day=START, reason=value)
    line = SystemicLine.objects.create(
        patient=patient, line_number=1, start=EARLY, stop_detail=LONG[:200]
    )
    for name in AGENTS:
        agent = Agent.objects.create(name=name, drug_class="other")
        LineAgent.objects.create(line=line, agent=agent)


@pytest.fixture
def awkward(world):
    _records(world)
    return world


def _context(world, language: str) -> ExportContext:
    return make_context(world.s1, world.user("dora_datamanager"), blinded=False, language=language)


def _stored_rows(ctx: ExportContext, prepared: Prepared) -> list[tuple]:
    """The table's rows as Django reads them (patient, record, subject, site, *values)."""
    table = prepared.table
    lookups = (*table.key_lookups(), *(c.lookup for c in prepared.columns))
    qs = table_queryset(ctx, table).order_by(table.patient_lookup, *table.order, "pk")
    return list(qs.values_list(*lookups))


def _labels(ctx: ExportContext, prepared: Prepared) -> dict[str, dict[str, str]]:
    """Code -> label of each coded column, translated now (call in the export's language)."""
    return {
        c.name: {code: str(label) for code, label in c.codes(ctx).items()}
        for c in prepared.columns
        if c.codes is not None
    }


def _expected_csv(ctx: ExportContext) -> dict[str, list[list[str]]]:
    """File -> rows (header first) that the stored values must read back as."""
    files = {}
    with translation.override(ctx.language):
        for prepared in prepare(ctx):
            labels = _labels(ctx, prepared)
            rows = [csv_export.header(prepared)]
            for _patient, record, subject, site, *values in _stored_rows(ctx, prepared):
                row = [subject or "", site, str(record)]
                for column, value in zip(prepared.columns, values, strict=True):
                    text = fmt(value, ctx.zone)
                    row.append(text)
                    if column.name in labels:
                        row.append(labels[column.name].get(text, ""))
                rows.append(row)
            files[f"{prepared.name}.csv"] = rows
    return files


def _read_zip(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _parsed(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _written(rows: list[list[str]]) -> bytes:
    """What ``csv.writer`` (excel dialect, CRLF) writes for these rows."""
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_csv_export_reads_back_exactly_the_stored_awkward_values(awkward, tmp_path, language):
    ctx = _context(awkward, language)
    path = tmp_path / "export.zip"
    rows = export_study(awkward.s1, ctx.user, "csv", path, blinded=False, language=language)
    files = _read_zip(path)
    expected = _expected_csv(ctx)
    for name, lines in expected.items():
        assert _parsed(files[name]) == lines, name
        # Byte for byte csv.writer's output: quoting, doubled quotes, CRLF line ends.
        assert files[name] == _written(lines), name
    assert rows == sum(len(lines) - 1 for lines in expected.values())
    # The awkward values themselves, not only what Django reads back.
    events = _parsed(files["adverse_events.csv"])
    header = events[0]
    details = [line[header.index("term_detail")] for line in events[1:]]
    assert sorted(details) == sorted(AWKWARD)
    assert {line[header.index("term")] for line in events[1:]} == {"Pain, other\r\n<specify> & µ"}
    unknown = next(line for line in events[1:] if line[header.index("term_detail")] == AWKWARD[0])
    column = header.index("attribution_systemic")
    assert unknown[column : column + 2] == [UNKNOWN_CODE, ""]
    assert unknown[header.index("outcome") + 1] == ""
    criteria = _parsed(files["eligibility_answers.csv"])
    assert LONG in [line[criteria[0].index("criterion_text")] for line in criteria[1:]]
    lines = _parsed(files["systemic_lines.csv"])
    assert sorted(lines[1][lines[0].index("agents")].split("; ")) == sorted(AGENTS)
    assert lines[1][lines[0].index("start")] == "0999-12-31"
    labs = _parsed(files["labs.csv"])
    assert [line[labs[0].index("value")] for line in labs[1:6]] == [
        "0.000",
        "-1.500",
        "123456789.123",
        "0.001",
        "100.000",
    ]
    serious = events[0].index("serious")
    yes = {"en": "Yes", "fr": "Oui"}[language]
    no = {"en": "No", "fr": "Non"}[language]
    assert {tuple(line[serious : serious + 2]) for line in events[1:]} == {("1", yes), ("0", no)}
    facts = _parsed(files["eligibility.csv"])
    liver = facts[0].index("liver_metastases")
    childbearing = facts[0].index("childbearing_potential")
    assert facts[1][liver : liver + 2] == ["", ""]
    assert facts[1][childbearing : childbearing + 2] == ["1", yes]


def test_french_labels_of_codes_are_written_in_french(awkward, tmp_path):
    ctx = _context(awkward, "fr")
    path = tmp_path / "export.zip"
    export_study(awkward.s1, ctx.user, "csv", path, blinded=False, language="fr")
    off_study = _parsed(_read_zip(path)["off_study.csv"])
    header, row = off_study
    assert header[-1] == "off_study_reason_label"
    assert row[-2:] == ["consent_withdrawn", "Retrait du consentement"]
    assert row[header.index("off_study_on")] == "0999-12-31"


NS = "{http://www.cdisc.org/ns/odm/v1.3}"


def _expected_odm(ctx: ExportContext) -> dict[tuple, list[dict[str, str]]]:
    """(subject key, form OID, repeat key) -> the items of each record, as stored."""
    forms: dict[tuple, list[dict[str, str]]] = {}
    with translation.override(ctx.language):
        for prepared in prepare(ctx):
            repeating = prepared.table.repeating
            for patient, record, subject, site, *values in _stored_rows(ctx, prepared):
                items = {
                    odm.item_oid(prepared, column.name): fmt(value, ctx.zone)
                    for column, value in zip(prepared.columns, values, strict=True)
                    if value is not None and value != ""
                }
                key = (
                    subject_key(subject, site, patient),
                    odm.form_oid(prepared),
                    str(record) if repeating else None,
                )
                forms.setdefault(key, []).append(items)
    return forms


def _root(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 - our own file


def _parsed_odm(data: bytes) -> dict[tuple, list[dict[str, str]]]:
    forms: dict[tuple, list[dict[str, str]]] = {}
    root = _root(data)
    for subject in root.iter(f"{NS}SubjectData"):
        for form in subject.iter(f"{NS}FormData"):
            key = (subject.get("SubjectKey"), form.get("FormOID"), form.get("FormRepeatKey"))
            items = {item.get("ItemOID"): item.get("Value") for item in form.iter(f"{NS}ItemData")}
            forms.setdefault(key, []).append(items)
    return forms


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_odm_export_reads_back_exactly_the_stored_awkward_values(awkward, tmp_path, language):
    ctx = _context(awkward, language)
    path = tmp_path / "export.xml"
    export_study(awkward.s1, ctx.user, "odm", path, blinded=False, language=language)
    data = path.read_bytes()
    assert _parsed_odm(data) == _expected_odm(ctx)
    # CR, LF and tab are escaped in attributes (a parser would read them back as spaces).
    clinical = data[data.index(b"<ClinicalData") :]
    assert b"\r" not in clinical and b"\t" not in clinical
    items = [
        item.get("Value")
        for item in _root(data).iter(f"{NS}ItemData")
        if item.get("ItemOID") == "IT.ADVERSE_EVENTS.TERM_DETAIL"
    ]
    assert sorted(items) == sorted(value for value in AWKWARD if value)
    decodes = {
        item.get("CodedValue"): item.find(f"{NS}Decode/{NS}TranslatedText").text
        for item in _root(data).iter(f"{NS}CodeListItem")
    }
    assert (
        decodes["consent_withdrawn"]
        == {
            "en": "Consent withdrawn",
            "fr": "Retrait du consentement",
        }[language]
    )


# --- the same bytes as the Python formatting ----------------------------------------------------


def _formatted_in_python(monkeypatch, module) -> None:
    """Every table of ``module``'s export formatted in Python (as a table with a date-time is)."""
    monkeypatch.setattr(module, "sql_row", lambda prepared: None)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_csv_lines_postgresql_writes_are_those_csv_writer_writes(
    awkward, tmp_path, monkeypatch, language
):
    user = awkward.user("dora_datamanager")
    by_sql = tmp_path / "sql.zip"
    export_study(awkward.s1, user, "csv", by_sql, blinded=False, language=language)
    _formatted_in_python(monkeypatch, csv_export)
    by_python = tmp_path / "python.zip"
    export_study(awkward.s1, user, "csv", by_python, blinded=False, language=language)
    sql_files, python_files = _read_zip(by_sql), _read_zip(by_python)
    assert list(sql_files) == list(python_files)
    for name, data in python_files.items():
        assert sql_files[name] == data, name


def _without_timestamps(data: bytes) -> bytes:
    return re.sub(rb'FileOID="[^"]*" CreationDateTime="[^"]*"', b"", data)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_odm_items_postgresql_writes_are_those_quoteattr_writes(
    awkward, tmp_path, monkeypatch, language
):
    user = awkward.user("dora_datamanager")
    by_sql = tmp_path / "sql.xml"
    export_study(awkward.s1, user, "odm", by_sql, blinded=False, language=language)
    _formatted_in_python(monkeypatch, odm)
    by_python = tmp_path / "python.xml"
    export_study(awkward.s1, user, "odm", by_python, blinded=False, language=language)
    assert _without_timestamps(by_sql.read_bytes()) == _without_timestamps(by_python.read_bytes())


def test_the_key_columns_lead_every_file(awkward, tmp_path):
    path = tmp_path / "export.zip"
    export_study(awkward.s1, awkward.user("dora_datamanager"), "csv", path, blinded=False)
    for name, data in _read_zip(path).items():
        if name != csv_export.DICTIONARY:
            assert _parsed(data)[0][:3] == [c.name for c in KEY_COLUMNS], name
