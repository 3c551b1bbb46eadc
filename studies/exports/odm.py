"""CDISC ODM 1.3.2 export: study metadata, sites (and users) and clinical data in one XML file.

Metadata and admin data are written element by element with ``xml.sax.saxutils.XMLGenerator``;
the clinical data, the bulk of the file, as strings (each record's ``ItemData`` formatted by
PostgreSQL, ``sql.xml_items``), byte for byte what the generator would write, one patient at a
time (``sources.by_patient``), so memory stays flat whatever the study's size.

Shape: ``ODM`` (Snapshot) > ``Study`` (``GlobalVariables``, ``MetaDataVersion`` with one
``StudyEventDef`` per part of the casebook, one ``FormDef``/``ItemGroupDef`` per form type,
``ItemDef``s and ``CodeList``s) > ``AdminData`` (sites as ``Location``s, users when audit records
are included) > ``ClinicalData`` > ``SubjectData`` > ``StudyEventData`` > ``FormData`` (one per
record; ``FormRepeatKey`` is the record's id) > ``ItemGroupData`` > ``ItemData``. With audit
records, ``ClinicalData/AuditRecords`` holds one ``AuditRecord`` per change recorded by the audit
trail (who, where, when, why; ``SourceID`` names the form, record and action).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from itertools import batched, chain
from typing import BinaryIO
from xml.sax.saxutils import XMLGenerator, escape, quoteattr

from django.contrib.auth import get_user_model
from django.utils import timezone

from studies.audit import event_model_for
from studies.exports import sql
from studies.exports.sources import (
    ARM,
    BOOLEAN,
    FIRST_VALUE,
    INTEGER,
    PATIENT,
    RECORD,
    SITE,
    SUBJECT,
    ExportContext,
    by_patient,
    count_rows,
    fmt,
    sql_row,
    subject_key,
    table_rows,
    text_chunks,
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
    """Elements written with ``XMLGenerator`` into ``text``; the clinical data, the bulk of the
    file, is written as strings into the same stream (``write``), byte for byte as the generator
    would write it."""

    def __init__(self, text: io.TextIOBase) -> None:
        self.write = text.write
        self.g = XMLGenerator(text, encoding="utf-8", short_empty_elements=True)

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


# --- clinical data ---------------------------------------------------------------------------
# Written as strings: what XMLGenerator writes for the same elements (an element is closed by
# ">" when a child follows, by "/>" when none does; every end tag is followed by a newline).


def _python_items(ctx: ExportContext, prepared: Prepared) -> Iterator[tuple]:
    """(patient id, record id, subject id, site number, items) of a table PostgreSQL cannot
    format (:func:`sources.sql_row`): the items formatted here."""
    oids = [
        f"<ItemData ItemOID={quoteattr(item_oid(prepared, c.name))} Value="
        for c in prepared.columns
    ]
    zone = ctx.zone
    for row in table_rows(ctx, prepared):
        items = "".join(
            f"{oid}{quoteattr(fmt(value, zone))}/>\n"
            for oid, value in zip(oids, row[FIRST_VALUE:], strict=True)
            if value is not None and value != ""
        )
        yield (*row[:FIRST_VALUE], items)


def _items_tokens(prepared: Prepared, row: sql.Row) -> list[sql.Token]:
    items = [(n, item_oid(prepared, c.name)) for n, c in enumerate(prepared.columns, FIRST_VALUE)]
    return sql.xml_items(row, items)


def _form_rows(ctx: ExportContext, prepared: Prepared) -> Iterator[tuple]:
    """(patient id, record id, subject id, site number, items) of each row, ordered by patient:
    ``items`` are the row's ``ItemData`` elements."""
    row = sql_row(prepared)
    if row is None:
        return _python_items(ctx, prepared)
    chunks = text_chunks(
        ctx,
        prepared,
        (PATIENT, RECORD, SUBJECT, SITE),
        ("odm", row.iso_dates),
        lambda: _items_tokens(prepared, row),
    )
    return chain.from_iterable(chunks)


class _Forms:
    """The strings around one form type's records."""

    def __init__(self, prepared: Prepared) -> None:
        self.open = f"<FormData FormOID={quoteattr(form_oid(prepared))}"
        self.repeating = prepared.table.repeating
        group = f"<ItemGroupData ItemGroupOID={quoteattr(group_oid(prepared))}"
        self.group = group + ">"
        self.empty = group + "/>\n</FormData>\n"
        self.close = "</ItemGroupData>\n</FormData>\n"

    def write(self, parts: list[str], rows: list[tuple]) -> None:
        for row in rows:
            start = (
                f'{self.open} FormRepeatKey="{row[RECORD]}">'
                if self.repeating
                else (self.open + ">")
            )
            items = row[FIRST_VALUE]
            if items:
                parts += (start, self.group, items, self.close)
            else:
                parts += (start, self.empty)


def _subject(
    x: _Xml, events: list[tuple[str, list]], groups: dict[str, list], site_pks, progress
) -> None:
    first = next(rows[0] for rows in groups.values() if rows)
    patient_id, subject_id, site_number = first[PATIENT], first[SUBJECT], first[SITE]
    key = quoteattr(subject_key(subject_id, site_number, patient_id))
    parts = [f"<SubjectData SubjectKey={key}"]
    children = False
    if site_number in site_pks:
        parts.append(f"><SiteRef LocationOID={quoteattr(f'LOC.{site_pks[site_number]}')}/>\n")
        children = True
    written = 0
    for event, forms in events:
        present = [(name, form) for name, form in forms if groups[name]]
        if not present:
            continue
        parts.append(f'{"" if children else ">"}<StudyEventData StudyEventOID="SE.{event}">')
        children = True
        for name, form in present:
            form.write(parts, groups[name])
            written += len(groups[name])
        parts.append("</StudyEventData>\n")
    parts.append("</SubjectData>\n" if children else "/>\n")
    x.write("".join(parts))
    progress.add(written)


def _clinical_data(x: _Xml, ctx: ExportContext, tables: list[Prepared], sites, progress) -> None:
    """``ClinicalData``: the subjects one at a time, then the audit records if asked for."""
    site_pks = {number: pk for pk, number, _i, _a in sites}
    forms = {p.name: _Forms(p) for p in tables}
    events = [
        (event, [(p.name, forms[p.name]) for p in tables if p.table.event == event])
        for event in _events_used(tables)
    ]
    start = (
        f"<ClinicalData StudyOID={quoteattr(study_oid(ctx))} MetaDataVersionOID={quoteattr(MDV)}"
    )
    x.write(start)
    children = False
    streams = {p.name: _form_rows(ctx, p) for p in tables}
    for _patient_id, groups in by_patient(streams):
        if not children:
            x.write(">")
            children = True
        _subject(x, events, groups, site_pks, progress)
    if ctx.include_audit:
        if not children:
            x.write(">")
            children = True
        _audit_records(x, ctx, tables, progress)
    x.write("</ClinicalData>\n" if children else "/>\n")


def _keeps_reasons(ctx: ExportContext, prepared: Prepared) -> bool:
    """Reasons for change are free text: a blinded export leaves them out of forms with
    arm-revealing content (a reason may name a dose)."""
    table = prepared.table
    revealing = table.blinded_exclude is not None or any(c.hidden_by for c in table.columns)
    return not (ctx.hides(ARM) and revealing)


def _leaf(name: str, text: str) -> str:
    """``<name>text</name>`` (``<name/>`` when empty) and a newline."""
    return f"<{name}>{escape(text)}</{name}>\n" if text else f"<{name}/>\n"


def _audit_records(x: _Xml, ctx: ExportContext, tables: list[Prepared], progress) -> None:
    x.write("<AuditRecords")
    children = False
    zone = ctx.zone
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
            events.order_by("pgh_id").values_list(*fields, site).iterator(chunk_size=ctx.chunk_size)
        )
        prefix = f"AR.{prepared.name.upper()}."
        form = form_oid(prepared)
        for chunk in batched(rows, ctx.chunk_size):
            parts = [] if children else [">"]
            children = True
            for pgh_id, obj_id, action, at, meta, site_pk in chunk:
                meta = meta or {}
                user = meta.get("user")
                record_id = quoteattr(f"{prefix}{pgh_id}")
                parts.append(
                    '<AuditRecord EditPoint="DBAudit" UsedImputationMethod="No" '
                    f"ID={record_id}>"
                    f"<UserRef UserOID={quoteattr(f'USR.{user}' if user else SYSTEM_USER)}/>\n"
                    f"<LocationRef LocationOID={quoteattr(f'LOC.{site_pk}')}/>\n"
                )
                parts.append(_leaf("DateTimeStamp", fmt(at, zone)))
                if reasons and meta.get("reason"):
                    parts.append(_leaf("ReasonForChange", str(meta["reason"])))
                parts.append(_leaf("SourceID", f"{form}/{obj_id}/{action}"))
                parts.append("</AuditRecord>\n")
            x.write("".join(parts))
            progress.add(len(chunk))
    x.write("</AuditRecords>\n" if children else "/>\n")


def count_audit(ctx: ExportContext, tables: list[Prepared]) -> int:
    return sum(events.count() for _p, events, _s in _audit_sources(ctx, tables))


def write_odm(ctx: ExportContext, out: BinaryIO, report=None) -> int:
    """Write the ODM file to ``out``; returns the number of forms (and audit records) written."""
    tables = prepare(ctx)
    if report is not None:
        audit = count_audit(ctx, tables) if ctx.include_audit else 0
        total = count_rows(ctx, tables) + audit
    else:
        total = 0
    progress = Progress(total, report)
    sites = _sites(ctx)
    now = timezone.localtime(timezone.now(), ctx.zone)
    text = io.TextIOWrapper(out, encoding="utf-8", errors="xmlcharrefreplace", newline="\n")
    try:
        x = _Xml(text)
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
            _clinical_data(x, ctx, tables, sites, progress)
        x.g.endDocument()
    finally:
        text.flush()
        text.detach()
    return progress.rows
