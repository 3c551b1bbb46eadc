"""What an export reads: one table per form type (``tables.py``), each a streamed query scoped to
one study and to the requester's scope.

Every table is read with ``values_list(...).iterator(chunk_size=...)`` (a server-side cursor), so
an export holds one chunk of rows per open table whatever the size of the study. The tables
describe themselves (column names, types, descriptions, codes), so the CSV files, their data
dictionary and the ODM metadata are written from the same definitions.

Blinding is decided once per export (``ExportContext.blinded``, from
:func:`studies.blinding.sees_allocation`): a blinded export leaves out the arm, every
arm-revealing column (SBRT dose and fractionation, attribution to the study drug), the fraction
log (its length is the fractionation) and the cycles of a study drug given in one arm only.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patients.models import Patient
from studies.models import Arm, Study

#: Rows fetched per round trip of a server-side cursor: the memory bound of an export.
CHUNK_SIZE = 1000

TEXT, INTEGER, FLOAT, DATE, DATETIME, BOOLEAN = [
    "text",
    "integer",
    "float",
    "date",
    "datetime",
    "boolean",
]


#: What a blinded export leaves out: the arm and everything arm-revealing; iRECIST results too
#: when only some arms are assessed with iRECIST (their mere presence names the arm).
ARM, IRECIST = "arm", "irecist"


@dataclass(frozen=True)
class ExportContext:
    """Who exports which study, blinded or not, in which language (see :func:`make_context`)."""

    study: Study
    user: Any
    blinded: bool
    language: str = "en"
    include_audit: bool = False
    chunk_size: int = CHUNK_SIZE
    hidden: frozenset[str] = frozenset()

    def hides(self, what: str) -> bool:
        return what in self.hidden

    def patients(self) -> models.QuerySet:
        """The study's patients as the requester may see them (the scope of every table)."""
        return Patient.objects.for_user(self.user).filter(study_site__study_id=self.study.pk)

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.study.time_zone)
        except (ValueError, KeyError):
            return ZoneInfo("UTC")


def make_context(
    study: Study,
    user,
    *,
    blinded: bool,
    language: str = "en",
    include_audit: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> ExportContext:
    hidden: set[str] = set()
    if blinded:
        hidden.add(ARM)
        if len(set(Arm.objects.filter(study=study).values_list("uses_irecist", flat=True))) > 1:
            hidden.add(IRECIST)
    return ExportContext(
        study, user, blinded, language, include_audit, chunk_size, frozenset(hidden)
    )


def fmt(value: Any, zone: ZoneInfo | None = None) -> str:
    """A value as written in every export: ISO 8601 dates, plain decimals, booleans as 1/0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return timezone.localtime(value, zone).isoformat() if zone else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# --- columns and tables ------------------------------------------------------------------------

Codes = Callable[["ExportContext"], dict[str, Any]]


@dataclass(frozen=True)
class Column:
    name: str
    lookup: str
    type: str
    description: Any  # lazy translation
    codes: Codes | None = None  # code -> label (lazy), for coded columns
    length: int | None = None
    hidden_by: str = ""  # ARM or IRECIST: left out of exports that hide it


def _field(model: type[models.Model], lookup: str) -> models.Field:
    """The model field a ``values_list`` lookup ends on (following relations)."""
    parts = lookup.split("__")
    for part in parts[:-1]:
        model = model._meta.get_field(part).related_model
    return model._meta.get_field(parts[-1])


def _type_of(f: models.Field) -> str:
    if isinstance(f, models.BooleanField):
        return BOOLEAN
    if isinstance(f, models.DateTimeField):
        return DATETIME
    if isinstance(f, models.DateField):
        return DATE
    if isinstance(f, models.DecimalField | models.FloatField):
        return FLOAT
    if isinstance(f, models.IntegerField | models.ForeignKey | models.AutoField):
        return INTEGER
    return TEXT


def _yes_no(ctx: ExportContext) -> dict[str, Any]:
    return {"1": _("Yes"), "0": _("No")}


def _static(choices) -> Codes:
    codes = {fmt(code): label for code, label in choices}
    return lambda ctx: codes


def col(
    model: type[models.Model],
    lookup: str,
    name: str | None = None,
    *,
    description: Any = None,
    choices=None,
    codes: Codes | None = None,
    type: str | None = None,  # noqa: A002 - the column's data type
    hidden: str = "",
) -> Column:
    """A column read from ``lookup``; type, description and codes come from the model field."""
    f = None if type else _field(model, lookup)
    kind = type or _type_of(f)
    if codes is None and choices is not None:
        codes = _static(choices)
    elif codes is None and f is not None and f.choices:
        codes = _static(f.flatchoices)
    elif codes is None and kind == BOOLEAN:
        codes = _yes_no
    relation = f is not None and f.is_relation  # a foreign key: its id
    return Column(
        name=name or lookup.replace("__", "_"),
        lookup=f"{lookup}_id" if relation else lookup,
        type=INTEGER if relation else kind,
        description=description if description is not None else (f.verbose_name if f else ""),
        codes=codes,
        length=getattr(f, "max_length", None) if kind == TEXT and f is not None else None,
        hidden_by=hidden,
    )


@dataclass(frozen=True)
class Table:
    """One form type: a CSV file, an ODM form, a source of SDTM rows."""

    name: str  # file name stem and ODM OID part
    label: Any
    model: type[models.Model]
    patient: str  # lookup from the model to its patient ("" for Patient itself)
    columns: tuple[Column, ...]
    event: str  # the ODM study event the form belongs to
    order: tuple[str, ...] = ()
    repeating: bool = True
    where: Q | None = None
    blinded_exclude: Q | None = None  # arm-revealing rows, left out of blinded exports
    hidden_by: str = ""  # the whole table is left out of exports that hide this
    annotations: dict[str, Callable[[], Any]] = field(default_factory=dict)

    @property
    def patient_lookup(self) -> str:
        return f"{self.patient}_id" if self.patient else "pk"

    def key_lookups(self) -> tuple[str, str, str, str]:
        prefix = f"{self.patient}__" if self.patient else ""
        return (self.patient_lookup, "pk", f"{prefix}subject_id", f"{prefix}study_site__number")


#: Leading columns of every table: who the row belongs to and its own key.
KEY_COLUMNS = (
    Column("subject_id", "", TEXT, _("Subject identifier (empty for patients only screened)")),
    Column("site", "", TEXT, _("Site number")),
    Column("record_id", "", INTEGER, _("Record identifier (links rows of other files)")),
)


def table_queryset(ctx: ExportContext, table: Table) -> models.QuerySet:
    """The table's rows of this study that the requester may see (blinding applied)."""
    if table.patient:
        qs = table.model._default_manager.filter(**{f"{table.patient}__in": ctx.patients()})
    else:
        qs = ctx.patients()
    if table.where is not None:
        qs = qs.filter(table.where)
    if ctx.hides(ARM) and table.blinded_exclude is not None:
        qs = qs.exclude(table.blinded_exclude)
    if table.annotations:
        qs = qs.annotate(**{name: make() for name, make in table.annotations.items()})
    return qs


def table_rows(ctx: ExportContext, prepared) -> Iterator[tuple]:
    """(patient id, record id, subject id, site number, *column values), ordered by patient."""
    table = prepared.table
    lookups = (*table.key_lookups(), *(c.lookup for c in prepared.columns))
    return (
        table_queryset(ctx, table)
        .order_by(table.patient_lookup, *table.order, "pk")
        .values_list(*lookups)
        .iterator(chunk_size=ctx.chunk_size)
    )


def count_rows(ctx: ExportContext, tables: Iterable) -> int:
    return sum(table_queryset(ctx, p.table).count() for p in tables)


# --- reading several tables patient by patient ----------------------------------------------------


def by_patient(streams: dict[str, Iterator[tuple]]) -> Iterator[tuple[int, dict[str, list]]]:
    """Merge streams ordered by patient (first item of each row) into one group per patient.

    Holds one patient's rows at a time, so memory does not grow with the study.
    """
    groups = {name: groupby(rows, key=itemgetter(0)) for name, rows in streams.items()}
    heads: dict[str, tuple[int, list]] = {}
    queue: list[tuple[int, str]] = []

    def advance(name: str) -> None:
        head = next(groups[name], None)
        if head is None:
            heads.pop(name, None)
            return
        heads[name] = (head[0], list(head[1]))
        heapq.heappush(queue, (head[0], name))

    for name in groups:
        advance(name)
    while queue:
        patient_id = queue[0][0]
        current = {name: [] for name in streams}
        while queue and queue[0][0] == patient_id:
            _pid, name = heapq.heappop(queue)
            current[name] = heads[name][1]
            advance(name)
        yield patient_id, current


def subject_key(subject_id: str | None, site_number: str, patient_id: int) -> str:
    """A subject's key in ODM and SDTM: the subject identifier, else a screening key."""
    return subject_id or f"SCR-{site_number}-{patient_id}"
