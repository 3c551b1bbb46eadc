"""CDISC ODM 1.3.2 export: study metadata, sites (and users) and clinical data in one XML file.

Written element by element with ``xml.sax.saxutils.XMLGenerator`` straight to the file, one
patient at a time (``sources.by_patient``), so memory stays flat whatever the study's size.

Shape: ``ODM`` (Snapshot) > ``Study`` (``GlobalVariables``, ``MetaDataVersion`` with one
``StudyEventDef`` per part of the casebook, one ``FormDef``/``ItemGroupDef`` per form type,
``ItemDef``s and ``CodeList``s) > ``AdminData`` (sites as ``Location``s, users when audit records
are included) > ``ClinicalData`` > ``SubjectData`` > ``StudyEventData`` > ``FormData`` (one per
record; ``FormRepeatKey`` is the record's id) > ``ItemGroupData`` > ``ItemData``. With audit
records, ``ClinicalData/AuditRecords`` holds one ``AuditRecord`` per change recorded by the audit
trail (who, where, when, why; ``SourceID`` names the form, record and action).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import BinaryIO
from xml.sax.saxutils import XMLGenerator

from django.contrib.auth import get_user_model
from django.utils import timezone

from studies.audit import event_model_for
from studies.exports.sources import (
    ARM,
    BOOLEAN,
    INTEGER,
    ExportContext,
    by_patient,
    count_rows,
    fmt,
    subject_key,
    table_rows,
)
from studies.exports.tables import EVENTS, Prepared, prepare
from studies.exports.writer import Progress
from studies.models import StudySite

NS = "http://www.cdisc.org/ns/odm/v1.3"
MDV = "MDV.1"
SYSTEM_USER = "USR.SYSTEM"


def study_oid(ctx: ExportContext) -> str:
    return f"ST.{ctx.study.code}"


def form_oid(prepared: Prepared) -> str:
    return f"F.{prepared.name.upper()}"


def group_oid(prepared: Prepared) -> str:
    return f"IG.{prepared.name.upper()}"


def item_oid(prepared: Prepared, column_name: str) -> str:
    return f"IT.{prepared.name.upper()}.{column_name.upper()}"


def codelist_oid(prepared: Prepared, column_name: str) -> str:
    return f"CL.{prepared.name.upper()}.{column_name.upper()}"


class _Xml:
    def __init__(self, out: BinaryIO) -> None:
        self.g = XMLGenerator(out, encoding="utf-8", short_empty_elements=True)

    def start(self, name: str, **attrs) -> None:
        self.g.startElement(name, {k: v for k, v in attrs.items() if v is not None})

    def end(self, name: str) -> None:
        self.g.endElement(name)
        self.g.ignorableWhitespace("\n")

    @contextmanager
    def el(self, name: str, **attrs) -> Iterator[None]:
        self.start(name, **attrs)
        yield
        self.end(name)

    def leaf(self, name: str, text: str | None = None, **attrs) -> None:
        self.start(name, **attrs)
        if text:
            self.g.characters(text)
        self.end(name)

    def text(self, name: str, text: str, language: str) -> None:
        with self.el(name):
            self.leaf("TranslatedText", text, **{"xml:lang": language})


# --- metadata ------------------------------------------------------------------------------------


def _events_used(tables: list[Prepared]) -> list[str]:
    used = {p.table.event for p in tables}
    return [event for event in EVENTS if event in used]


def _event_defs(x: _Xml, tables: list[Prepared]) -> None:
    events = _events_used(tables)
    with x.el("Protocol"):
        for number, event in enumerate(events, 1):
            x.leaf(
                "StudyEventRef",
                StudyEventOID=f"SE.{event}",
                OrderNumber=str(number),
                Mandatory="No",
            )
    for event in events:
        with x.el(
            "StudyEventDef",
            OID=f"SE.{event}",
            Name=str(EVENTS[event]),
            Repeating="No",
            Type="Common",
        ):
            forms = [p for p in tables if p.table.event == event]
            for number, prepared in enumerate(forms, 1):
                x.leaf(
                    "FormRef", FormOID=form_oid(prepared), Mandatory="No", OrderNumber=str(number)
                )


def _form_defs(x: _Xml, tables: list[Prepared]) -> None:
    for prepared in tables:
        repeating = "Yes" if prepared.table.repeating else "No"
        with x.el(
            "FormDef", OID=form_oid(prepared), Name=str(prepared.table.label), Repeating=repeating
        ):
            x.leaf("ItemGroupRef", ItemGroupOID=group_oid(prepared), Mandatory="Yes")
    for prepared in tables:
        with x.el("ItemGroupDef", OID=group_oid(prepared), Name=prepared.name, Repeating="No"):
            for number, column in enumerate(prepared.columns, 1):
                x.leaf(
                    "ItemRef",
                    ItemOID=item_oid(prepared, column.name),
                    Mandatory="No",
                    OrderNumber=str(number),
                )


def _item_defs(x: _Xml, ctx: ExportContext, tables: list[Prepared]) -> None:
    for prepared in tables:
        for column in prepared.columns:
            length = str(column.length) if column.length else None
            with x.el(
                "ItemDef",
                OID=item_oid(prepared, column.name),
                Name=column.name,
                DataType=column.type,
                Length=length,
            ):
                x.text("Description", str(column.description), ctx.language)
                if column.name in prepared.codes and column.type != BOOLEAN:
                    x.leaf("CodeListRef", CodeListOID=codelist_oid(prepared, column.name))


def _code_lists(x: _Xml, ctx: ExportContext, tables: list[Prepared]) -> None:
    for prepared in tables:
        for column in prepared.columns:
            codes = prepared.codes.get(column.name)
            if codes is None or column.type == BOOLEAN:
                continue
            data_type = "integer" if column.type == INTEGER else "text"
            with x.el(
                "CodeList",
                OID=codelist_oid(prepared, column.name),
                Name=column.name,
                DataType=data_type,
            ):
                for code, label in codes.items():
                    with x.el("CodeListItem", CodedValue=code):
                        x.text("Decode", label, ctx.language)


def _study(x: _Xml, ctx: ExportContext, tables: list[Prepared]) -> None:
    study = ctx.study
    with x.el("Study", OID=study_oid(ctx)):
        with x.el("GlobalVariables"):
            x.leaf("StudyName", study.acronym or study.code)
            x.leaf("StudyDescription", study.title)
            x.leaf("ProtocolName", study.code)
        name = f"{study.code} {study.protocol_version}".strip()
        with x.el("MetaDataVersion", OID=MDV, Name=name):
            _event_defs(x, tables)
            _form_defs(x, tables)
            _item_defs(x, ctx, tables)
            _code_lists(x, ctx, tables)


# --- admin data: sites and users -----------------------------------------------------------------


def _sites(ctx: ExportContext) -> list[tuple[int, str, str, date | None]]:
    return list(
        StudySite.objects.for_user(ctx.user)
        .filter(study=ctx.study)
        .order_by("number")
        .values_list("pk", "number", "site__institution", "activation_date")
    )


def _audit_sources(ctx: ExportContext, tables: list[Prepared]):
    """(prepared table, event queryset) for each audited model of the export, once per model."""
    seen = set()
    for prepared in tables:
        table = prepared.table
        if table.model in seen:
            continue
        seen.add(table.model)
        try:
            event_model = event_model_for(table.model)
        except LookupError:
            continue  # computed results (not audited)
        scope = f"{table.patient}__in" if table.patient else "pgh_obj_id__in"
        events = event_model.objects.filter(**{scope: ctx.patients()})
        if ctx.hides(ARM) and table.blinded_exclude is not None:
            events = events.exclude(table.blinded_exclude)
        site = f"{table.patient}__study_site_id" if table.patient else "study_site_id"
        yield prepared, events, site


def _audit_users(ctx: ExportContext, tables: list[Prepared]) -> list[tuple[int, str, str]]:
    ids: set[int] = set()
    for _prepared, events, _site in _audit_sources(ctx, tables):
        values = events.values_list("pgh_context__metadata__user", flat=True).distinct()
        ids.update(int(v) for v in values if isinstance(v, int | str) and str(v).isdigit())
    users = get_user_model().objects.filter(pk__in=ids).order_by("pk")
    return [(u.pk, u.get_username(), u.get_full_name()) for u in users]


def _admin(x: _Xml, ctx: ExportContext, tables: list[Prepared], sites) -> None:
    today = timezone.localdate()
    with x.el("AdminData", StudyOID=study_oid(ctx)):
        if ctx.include_audit:
            for pk, username, full_name in _audit_users(ctx, tables):
                with x.el("User", OID=f"USR.{pk}", UserType="Other"):
                    x.leaf("LoginName", username)
                    x.leaf("DisplayName", full_name or username)
            with x.el("User", OID=SYSTEM_USER, UserType="Other"):
                x.leaf("LoginName", "system")
                x.leaf("DisplayName", "OligoCRF")
        for pk, number, institution, activated in sites:
            with x.el(
                "Location", OID=f"LOC.{pk}", Name=f"{number} {institution}", LocationType="Site"
            ):
                effective = activated or ctx.study.start_date or today
                x.leaf(
                    "MetaDataVersionRef",
                    StudyOID=study_oid(ctx),
                    MetaDataVersionOID=MDV,
                    EffectiveDate=effective.isoformat(),
                )


# --- clinical data -------------------------------------------------------------------------------


def _form(x: _Xml, ctx: ExportContext, prepared: Prepared, row: tuple) -> None:
    record_id, values = row[1], row[4:]
    repeat = str(record_id) if prepared.table.repeating else None
    with (
        x.el("FormData", FormOID=form_oid(prepared), FormRepeatKey=repeat),
        x.el("ItemGroupData", ItemGroupOID=group_oid(prepared)),
    ):
        for column, value in zip(prepared.columns, values, strict=True):
            if value is None or value == "":
                continue
            x.leaf("ItemData", ItemOID=item_oid(prepared, column.name), Value=fmt(value, ctx.zone))


def _subject(x: _Xml, ctx, tables, groups: dict[str, list], site_pks, progress) -> None:
    first = next(rows[0] for rows in groups.values() if rows)
    patient_id, subject_id, site_number = first[0], first[2], first[3]
    with x.el("SubjectData", SubjectKey=subject_key(subject_id, site_number, patient_id)):
        if site_number in site_pks:
            x.leaf("SiteRef", LocationOID=f"LOC.{site_pks[site_number]}")
        for event in _events_used(tables):
            forms = [p for p in tables if p.table.event == event and groups[p.name]]
            if not forms:
                continue
            with x.el("StudyEventData", StudyEventOID=f"SE.{event}"):
                for prepared in forms:
                    for row in groups[prepared.name]:
                        _form(x, ctx, prepared, row)
                        progress.add()


def _keeps_reasons(ctx: ExportContext, prepared: Prepared) -> bool:
    """Reasons for change are free text: a blinded export leaves them out of forms with
    arm-revealing content (a reason may name a dose)."""
    table = prepared.table
    revealing = table.blinded_exclude is not None or any(c.hidden_by for c in table.columns)
    return not (ctx.hides(ARM) and revealing)


def _audit_records(x: _Xml, ctx: ExportContext, tables: list[Prepared], progress) -> None:
    with x.el("AuditRecords"):
        for prepared, events, site in _audit_sources(ctx, tables):
            reasons = _keeps_reasons(ctx, prepared)
            fields = (
                "pgh_id",
                "pgh_obj_id",
                "pgh_label",
                "pgh_created_at",
                "pgh_context__metadata",
            )
            rows = (
                events.order_by("pgh_id")
                .values_list(*fields, site)
                .iterator(chunk_size=ctx.chunk_size)
            )
            for pgh_id, obj_id, action, at, meta, site_pk in rows:
                meta = meta or {}
                user = meta.get("user")
                ar_id = f"AR.{prepared.name.upper()}.{pgh_id}"
                with x.el("AuditRecord", EditPoint="DBAudit", UsedImputationMethod="No", ID=ar_id):
                    x.leaf("UserRef", UserOID=f"USR.{user}" if user else SYSTEM_USER)
                    x.leaf("LocationRef", LocationOID=f"LOC.{site_pk}")
                    x.leaf("DateTimeStamp", fmt(at, ctx.zone))
                    if reasons and meta.get("reason"):
                        x.leaf("ReasonForChange", str(meta["reason"]))
                    x.leaf("SourceID", f"{form_oid(prepared)}/{obj_id}/{action}")
                progress.add()


def count_audit(ctx: ExportContext, tables: list[Prepared]) -> int:
    return sum(events.count() for _p, events, _s in _audit_sources(ctx, tables))


def write_odm(ctx: ExportContext, out: BinaryIO, report=None) -> int:
    """Write the ODM file to ``out``; returns the number of forms (and audit records) written."""
    tables = prepare(ctx)
    total = count_rows(ctx, tables) + (count_audit(ctx, tables) if ctx.include_audit else 0)
    progress = Progress(total, report)
    sites = _sites(ctx)
    site_pks = {number: pk for pk, number, _i, _a in sites}
    now = timezone.localtime(timezone.now(), ctx.zone)
    x = _Xml(out)
    x.g.startDocument()
    with x.el(
        "ODM",
        xmlns=NS,
        ODMVersion="1.3.2",
        FileType="Snapshot",
        FileOID=f"OligoCRF.{ctx.study.code}.{now:%Y%m%dT%H%M%S}",
        CreationDateTime=now.isoformat(timespec="seconds"),
        SourceSystem="OligoCRF",
        Description="blinded" if ctx.blinded else None,
    ):
        _study(x, ctx, tables)
        _admin(x, ctx, tables, sites)
        with x.el("ClinicalData", StudyOID=study_oid(ctx), MetaDataVersionOID=MDV):
            streams = {p.name: table_rows(ctx, p) for p in tables}
            for _patient_id, groups in by_patient(streams):
                _subject(x, ctx, tables, groups, site_pks, progress)
            if ctx.include_audit:
                _audit_records(x, ctx, tables, progress)
    x.g.endDocument()
    return progress.rows
