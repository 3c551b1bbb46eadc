"""What an export reads: one table per form type (``tables.py``), each a streamed query scoped to
one study and to the requester's scope.

Every table is read ``chunk_size`` rows at a time, so an export holds one chunk of rows per open
table whatever the size of the study: through a server-side cursor where tables are read side by
side (ODM, SDTM), streamed by the server where they are read one after the other (CSV). The
tables describe themselves (column names, types, descriptions, codes), so the CSV files, their
data dictionary and the ODM metadata are written from the same definitions.

Speed (issue #9): PostgreSQL formats each row (its CSV line, its ODM items: ``sql.py``,
:func:`text_chunks`), so Python only moves text; each table's query is compiled by Django once
per process and run with the export's patient ids (read once, :attr:`ExportContext.patient_ids`)
as its only varying part. A streamed table's query is also prepared once per database connection
(parsed and planned once, not on every export: that was most of the cost of a small study's
export), and run on a generic plan (:func:`generic_plans`). The CSV export reads its tables'
statements through libpq one after the other, each sent as soon as the one before has sent its
last row (:func:`chained_chunks`). A table with a column PostgreSQL cannot format as ``fmt`` does
(a date-time, in the study's time zone) is formatted here, from :func:`table_rows`.

Blinding is decided once per export (``ExportContext.blinded``, from
:func:`studies.blinding.sees_allocation`): a blinded export leaves out the arm, every
arm-revealing column (SBRT dose and fractionation, attribution to the study drug), the fraction
log (its length is the fractionation) and the cycles of a study drug given in one arm only.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import select
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from itertools import batched, chain, groupby
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from django.db import connection, connections, models
from django.db.models import BooleanField, Expression, F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patients.models import Patient
from studies.exports import sql
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
    #: Database alias -> the export statements prepared on its connection (:func:`_prepare`).
    statements: dict[str, set[str]] = field(default_factory=dict, compare=False, repr=False)

    def hides(self, what: str) -> bool:
        return what in self.hidden

    def patients(self) -> models.QuerySet:
        """The study's patients as the requester may see them (the scope of every table)."""
        return Patient.objects.for_user(self.user).filter(study_site__study_id=self.study.pk)

    @cached_property
    def patient_ids(self) -> list[int]:
        """Their ids, read once per export: every table is read for these patients (a list of
        ids plans faster than the scope's subquery in each of the export's queries)."""
        return list(self.patients().order_by("pk").values_list("pk", flat=True))

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


@dataclass(frozen=True, eq=False)
class StaticCodes:
    """Codes that are the same in every export (a field's choices, yes/no): their labels are
    translated once per language (``tables.prepare``)."""

    codes: dict[str, Any]  # code -> label (lazy)

    def __call__(self, ctx: ExportContext) -> dict[str, Any]:
        return self.codes


_yes_no = StaticCodes({"1": _("Yes"), "0": _("No")})


def _static(choices) -> Codes:
    return StaticCodes({fmt(code): label for code, label in choices})


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


class _Scope:
    """Stands for the export's patient ids in a query compiled once (:func:`text_chunks`)."""


SCOPE = _Scope()


class InScope(Expression):
    """``<patient id> = ANY(<ids>)``: the row is of one of the export's patients."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, lookup: str, ids: list[int] | _Scope) -> None:
        super().__init__(output_field=BooleanField())
        self.source = F(lookup)
        self.ids = ids

    def get_source_expressions(self) -> list[Expression]:
        return [self.source]

    def set_source_expressions(self, exprs) -> None:
        (self.source,) = exprs

    @property
    def identity(self):
        return (type(self), self.source, id(self.ids))

    def as_sql(self, compiler, connection):
        sql_text, params = compiler.compile(self.source)
        return f"{sql_text} = ANY(%s::bigint[])", [*params, self.ids]


def table_queryset(
    ctx: ExportContext, table: Table, ids: list[int] | _Scope | None = None
) -> models.QuerySet:
    """The table's rows of this study that the requester may see (blinding applied), for the
    patients ``ids`` (default: the export's)."""
    ids = ctx.patient_ids if ids is None else ids
    qs = table.model._default_manager.filter(InScope(table.patient_lookup, ids))
    if table.where is not None:
        qs = qs.filter(table.where)
    if ctx.hides(ARM) and table.blinded_exclude is not None:
        qs = qs.exclude(table.blinded_exclude)
    if table.annotations:
        qs = qs.annotate(**{name: make() for name, make in table.annotations.items()})
    return qs


def _read_as_django_would(prepared) -> bool:
    """Whether the values PostgreSQL's driver returns are the ones Django's ``values_list``
    would: no column converted in Python (``from_db_value``) nor computed."""
    table = prepared.table
    for c in prepared.columns:
        if c.lookup in table.annotations or hasattr(_field(table.model, c.lookup), "from_db_value"):
            return False
    return True


def table_rows(
    ctx: ExportContext, prepared, hold: Callable[[], AbstractContextManager] | None = None
) -> Iterator[tuple]:
    """(patient id, record id, subject id, site number, *column values), ordered by patient
    (``hold``: see :func:`text_chunks`)."""
    if _read_as_django_would(prepared):
        return chain.from_iterable(text_chunks(ctx, prepared, (), "values", None, hold=hold))
    table = prepared.table
    lookups = (*table.key_lookups(), *(c.lookup for c in prepared.columns))
    return (
        table_queryset(ctx, table)
        .order_by(table.patient_lookup, *table.order, "pk")
        .values_list(*lookups)
        .iterator(chunk_size=ctx.chunk_size)
    )


def count_rows(ctx: ExportContext, tables: Iterable) -> int:
    """The rows of every table, counted in one query (for the progress of a running export)."""
    counts, params = [], []
    for prepared in tables:
        query = table_queryset(ctx, prepared.table).order_by().values("pk").query
        statement, used = query.sql_with_params()
        # Django's SQL of the table's queryset, its values passed as parameters.
        counts.append(f"(SELECT count(*) FROM ({statement}) AS counted)")  # noqa: S608
        params.extend(used)
    if not counts:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " + ".join(counts), params)
        return int(cursor.fetchone()[0])


# --- rows formatted by PostgreSQL (sql.py) ------------------------------------------------------

#: Where the key columns stand in a row of :func:`table_rows` (and in :func:`text_rows`' tokens).
PATIENT, RECORD, SUBJECT, SITE = range(4)
#: Where the first column of a table stands.
FIRST_VALUE = 4


def _nullable(model: type[models.Model], lookup: str) -> bool:
    """Whether a ``values_list`` lookup may read NULL: a nullable field, or one reached through
    a nullable or reverse relation (an outer join)."""
    for part in lookup.split("__"):
        if part == "pk":
            return False
        f = model._meta.get_field(part)
        if f.null or (f.is_relation and not f.concrete):
            return True
        if f.is_relation and part != f.attname:
            model = f.related_model
    return False


#: (kinds, nullable columns) of a table's visible columns, or None: see :func:`sql_row`.
_KINDS: dict[tuple, tuple[dict[int, str], frozenset[int]] | None] = {}


def _kinds(prepared) -> tuple[dict[int, str], frozenset[int]] | None:
    table = prepared.table
    kinds = {PATIENT: sql.INT, RECORD: sql.INT, SUBJECT: sql.TEXT, SITE: sql.TEXT}
    for n, c in enumerate(prepared.columns, FIRST_VALUE):
        if c.lookup in table.annotations:
            kind = sql.sql_kind(None, annotated_text=c.type == TEXT)
        else:
            kind = sql.sql_kind(_field(table.model, c.lookup))
        if kind is None:
            return None
        kinds[n] = kind
    lookups = (*table.key_lookups(), *(c.lookup for c in prepared.columns))
    nullable = frozenset(
        n
        for n, lookup in enumerate(lookups)
        if lookup in table.annotations or _nullable(table.model, lookup)
    )
    return kinds, nullable


def sql_row(prepared) -> sql.Row | None:
    """How PostgreSQL formats each column of a row of :func:`table_rows` (numbered as there);
    None when a column of the table is left to Python."""
    key = (prepared.table.name, tuple(c.name for c in prepared.columns))
    if key not in _KINDS:
        _KINDS[key] = _kinds(prepared)  # tables are constant: a few entries per process
    found = _KINDS[key]
    alias = prepared.table.model._default_manager.db
    return None if found is None else sql.Row(*found, sql.iso_dates(alias))


@dataclass(frozen=True)
class Compiled:
    """A table's query as SQL, its values as literals: the export's patient ids (a ``bigint[]``)
    go between ``before`` and ``after``."""

    alias: str
    before: str
    after: str

    @cached_property
    def name(self) -> str:
        """Its name as a prepared statement: the same query, the same name in every process."""
        digest = hashlib.sha256(self.statement.encode()).hexdigest()[:32]
        return f"{STATEMENT_PREFIX}{digest}"

    @cached_property
    def statement(self) -> str:
        return f"{self.before}$1{self.after}"


#: Queries of :func:`text_chunks`, compiled once per process. The SQL holds its values as
#: literals: no parameter to interpolate into a query of some kilobytes on each run, only the ids.
_COMPILED: dict[tuple, Compiled] = {}
#: At most this many (tables x formats x blinding x languages): the cache is emptied past it.
COMPILED_MAX = 512
#: Stands for the ids while a query is compiled.
_SCOPE_MARK = "oligocrf.export.patient-ids"
#: Names of the prepared statements of exports (see :func:`text_chunks`).
STATEMENT_PREFIX = "oligocrf_export_"
#: Patients read per statement of a streamed table: a statement holds the connection until it has
#: sent its last row, and the export's progress is reported between statements.
PATIENT_BATCH = 1000


def _compiled(
    ctx: ExportContext, prepared, keys: tuple[int, ...], what: Hashable, tokens
) -> Compiled:
    """The query of :func:`text_chunks`, compiled by Django the first time (per process) and
    kept: its SQL depends only on the table, its visible columns, their codes (labels in the
    language), blinding and ``what`` is written; the patients are a parameter (:data:`SCOPE`)."""
    table = prepared.table
    key = (
        what,
        table.name,
        keys,
        tuple(c.name for c in prepared.columns),
        tuple((name, tuple(codes.items())) for name, codes in prepared.codes.items()),
        ctx.hides(ARM) and table.blinded_exclude is not None,
        table.model._default_manager.db,
    )
    found = _COMPILED.get(key)
    if found is None:
        lookups = (*table.key_lookups(), *(c.lookup for c in prepared.columns))
        qs = table_queryset(ctx, table, SCOPE).order_by(table.patient_lookup, *table.order, "pk")
        if tokens is None:
            qs = qs.values_list(*lookups)
        else:
            text = sql.Text(tokens(), [F(lookup) for lookup in lookups])
            qs = qs.annotate(export_text=text).values_list(
                *(lookups[k] for k in keys), "export_text"
            )
        statement, params = qs.query.sql_with_params()
        params = [_SCOPE_MARK if p is SCOPE else p for p in params]
        db = connections[qs.db]
        db.ensure_connection()
        literal = psycopg.ClientCursor(db.connection).mogrify(statement, params)
        before, mark, after = literal.partition(f"'{_SCOPE_MARK}'")
        if not mark or _SCOPE_MARK in after:
            raise ValueError(f"the patients of {table.name} are not one parameter")
        if len(_COMPILED) >= COMPILED_MAX:
            _COMPILED.clear()
        found = _COMPILED[key] = Compiled(qs.db, before, after)
    return found


def compiled(ctx: ExportContext, prepared, what: Hashable, tokens: Callable[[], list]) -> Compiled:
    """The query of a table's text rows (see :func:`text_chunks`), for :func:`chained_chunks`."""
    return _compiled(ctx, prepared, (), what, tokens)


def _ids(patient_ids: Iterable[int]) -> str:
    """Patient ids as a SQL literal (of the ``bigint[]`` the query casts it to)."""
    return "'{" + ",".join(str(int(pk)) for pk in patient_ids) + "}'"


def text_chunks(
    ctx: ExportContext,
    prepared,
    keys: Iterable[int],
    what: Hashable,
    tokens: Callable[[], list] | None,
    *,
    hold: Callable[[], AbstractContextManager] | None = None,
) -> Iterator[Sequence[tuple]]:
    """(*key columns, text) of each row, ordered as :func:`table_rows`, ``ctx.chunk_size`` rows
    at a time. The text is built by PostgreSQL from ``tokens()`` over the row's columns (numbered
    as in :func:`table_rows`); ``what`` names that text (the tokens of one ``what`` must depend
    only on the table and its prepared columns and codes). Without ``tokens``, the rows of
    :func:`table_rows` as the driver reads them.

    Tables read side by side (the ODM merges them patient by patient) each hold a server-side
    cursor. A caller that reads one table at a time and queries nothing else meanwhile passes
    ``hold`` (see :func:`_stream`): the query is prepared once per connection and streamed, which
    spares PostgreSQL parsing and planning it on each export and the round trips of a cursor."""
    compiled = _compiled(ctx, prepared, tuple(keys), what, tokens)
    db = connections[compiled.alias]
    if hold is not None and _streams(db):
        return _streamed_chunks(ctx, compiled, hold)
    return _cursor_chunks(ctx, compiled)


def _cursor_chunks(ctx: ExportContext, compiled: Compiled) -> Iterator[list[tuple]]:
    db = connections[compiled.alias]
    streamed = not db.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    with db.chunked_cursor() if streamed else db.cursor() as cursor:
        cursor.execute(compiled.before + _ids(ctx.patient_ids) + compiled.after)
        while rows := cursor.fetchmany(ctx.chunk_size):
            yield rows
            if len(rows) < ctx.chunk_size:
                break  # the last chunk: no round trip for an empty one


def _streams(db) -> bool:
    """Whether queries may be prepared and streamed: a connection of its own to PostgreSQL
    (without server-side cursors, as behind a pooler in transaction mode, a statement prepared in
    one session may be run in another) and a libpq that streams chunks of rows (17 and later)."""
    return (
        db.vendor == "postgresql"
        and not db.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
        and psycopg.capabilities.has_stream_chunked()
    )


def _streamed_chunks(
    ctx: ExportContext, compiled: Compiled, hold: Callable[[], AbstractContextManager]
) -> Iterator[tuple[tuple, ...]]:
    """The rows of the prepared query, one statement per :data:`PATIENT_BATCH` patients (in the
    order of the ids: the rows come in the order of one query), each streamed inside ``hold()``."""
    db = connections[compiled.alias]
    name = _prepare(ctx, compiled)
    for patient_ids in batched(ctx.patient_ids, PATIENT_BATCH):
        with hold():
            yield from _stream(db, f"EXECUTE {name}({_ids(patient_ids)})", ctx.chunk_size)


@contextmanager
def generic_plans(aliases: Iterable[str]) -> Iterator[None]:
    """Inside the block, the export's prepared queries run on generic plans (``plan_cache_mode =
    force_generic_plan``), planned once per connection; on leaving it, the session's setting again.

    By default PostgreSQL plans each of a prepared query's first five executions anew for its
    values: a millisecond or two per table, as long as reading a small study's table. A generic
    plan, made once, joins the study's rows by hashing them. Measured (issue #9, the whole
    portfolio's CSV export, interleaved runs): 15-18% faster at size S, the same at L, where a few
    large tables read ~10% slower (a full sort where the custom plan sorts by patient
    incrementally) for the planning saved on every other. Only prepared statements follow this
    setting, and only the export's run inside the block (Django does not prepare its queries).
    """
    dbs = [connections[alias] for alias in dict.fromkeys(aliases)]
    dbs = [db for db in dbs if _streams(db)]
    for db in dbs:
        with db.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")
    try:
        yield
    finally:
        for db in dbs:
            # A failed transaction is rolled back, and the setting made in it with it.
            status = db.connection.info.transaction_status if db.connection else None
            if status is not None and status != psycopg.pq.TransactionStatus.INERROR:
                with db.cursor() as cursor:
                    cursor.execute("RESET plan_cache_mode")


def chains(alias: str) -> bool:
    """Whether :func:`chained_chunks` may read on this connection: it streams (:func:`_streams`)
    and its text comes as UTF-8 (Django's PostgreSQL connections are set so)."""
    db = connections[alias]
    if not _streams(db):
        return False
    db.ensure_connection()
    return db.connection.info.encoding == "utf-8"


def _prepare(ctx: ExportContext, compiled: Compiled) -> str:
    """The name of the query prepared on its connection (prepared now if need be)."""
    known = ctx.statements.get(compiled.alias)
    if known is None:
        # Read once per export: the connection may be new, or its statements deallocated.
        with connections[compiled.alias].cursor() as cursor:
            cursor.execute(
                "SELECT name FROM pg_prepared_statements WHERE starts_with(name, %s)",
                [STATEMENT_PREFIX],
            )
            known = ctx.statements[compiled.alias] = {name for (name,) in cursor.fetchall()}
    if compiled.name not in known:
        with connections[compiled.alias].cursor() as cursor:
            cursor.execute(f"PREPARE {compiled.name}(bigint[]) AS {compiled.statement}")
        known.add(compiled.name)
    return compiled.name


def _stream(db, statement: str, size: int) -> Iterator[tuple[tuple, ...]]:
    """The rows of ``statement`` in chunks of ``size``, as the server sends them (libpq's chunked
    rows mode): one round trip, and no more than a chunk held. Until the last chunk is read (or
    the iterator closed) the connection can run nothing else. Run through the connection's
    execute wrappers (query counters, instrumentation) like any query."""
    db.ensure_connection()
    db.validate_no_broken_transaction()
    with db.cursor() as cursor:
        chunks = batched(cursor.cursor.stream(statement, size=size), size)

        def first(_sql, _params, _many, _context):
            return next(chunks, None)  # sends the statement, reads its first chunk

        executor = first
        for wrapper in reversed(db.execute_wrappers):
            executor = functools.partial(wrapper, executor)
        with db.wrap_database_errors:
            head = executor(statement, None, False, {"connection": db, "cursor": cursor})
            if head is not None:
                yield head
                yield from chunks


class _Wire:
    """Statements sent on a PostgreSQL connection and their rows read back, through libpq
    (``psycopg.pq``), one statement at a time: a CSV line is one column of text, so its bytes
    are taken as the server sent them (UTF-8), neither decoded nor made a Python row."""

    def __init__(self, db, size: int) -> None:
        self.db, self.size = db, size
        self.pgconn = db.connection.pgconn
        self.busy = False  # a statement sent whose results are not all read
        self.readable = select.poll()  # any descriptor number (select() stops at 1023)
        self.readable.register(self.pgconn.socket, select.POLLIN)

    def send(self, statement: str) -> None:
        """Send ``statement`` (its rows come in chunks of ``size``), through the connection's
        execute wrappers (query counters, instrumentation) like any query."""

        def sending(_sql, _params, _many, _context):
            self.pgconn.send_query_params(statement.encode(), None)  # raises if it cannot
            self.busy = True
            self.pgconn.set_chunked_rows_mode(self.size)

        executor = sending
        for wrapper in reversed(self.db.execute_wrappers):
            executor = functools.partial(wrapper, executor)
        with self.db.cursor() as cursor:
            executor(statement, None, False, {"connection": self.db, "cursor": cursor})

    def _result(self):
        pgconn = self.pgconn
        while pgconn.is_busy():
            self.readable.poll()
            pgconn.consume_input()
        return pgconn.get_result()

    def chunks(self) -> Iterator[tuple[bytes, int]]:
        """The rows of the statement sent, a chunk at a time: (their text joined, how many)."""
        status = psycopg.pq.ExecStatus
        while (result := self._result()) is not None:
            if result.status == status.TUPLES_CHUNK:
                get, count = result.get_value, result.ntuples
                yield b"".join([get(n, 0) for n in range(count)]), count
            elif result.status != status.TUPLES_OK:
                self._finish()
                message = (result.error_message or b"").decode(errors="replace")
                raise psycopg.DatabaseError(message.strip() or "the export query failed")
        self.busy = False

    def _finish(self) -> None:
        while self._result() is not None:
            pass
        self.busy = False

    def discard(self) -> None:
        """Read and drop what is left of the statement sent (its reader went away): cancelling it
        would abort the transaction it runs in, if any; it reads one batch of patients at most."""
        if self.busy:
            self._finish()


def _executions(ctx: ExportContext, tables: Sequence[Compiled | None]) -> list[tuple[int, str]]:
    """(table index, statement): each table's prepared query, run for each batch of patients."""
    statements: list[tuple[int, str]] = []
    for index, compiled in enumerate(tables):
        if compiled is not None:
            name = _prepare(ctx, compiled)
            batches = batched(ctx.patient_ids, PATIENT_BATCH)
            statements += [(index, f"EXECUTE {name}({_ids(ids)})") for ids in batches]
    return statements


def _handed(ready: list) -> Iterator:
    """The items of ``ready``, which is emptied."""
    items = ready[:]
    ready.clear()
    return iter(items)


def _all_but_last(index: int, chunks: Iterator, ready: list) -> Iterator:
    """(index, chunk) for each of ``chunks`` but the last, which is put in ``ready``."""
    last = None
    for chunk in chunks:
        if last is not None:
            yield (index, last)
        last = chunk
    if last is not None:
        ready.append((index, last))


def chained_chunks(
    ctx: ExportContext,
    tables: Sequence[Compiled | None],
    hold: Callable[[], AbstractContextManager],
    pause: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[int, tuple[bytes, int] | None]]:
    """The text rows of each table in turn (a CSV line each, UTF-8): ``(table index, (text,
    rows))`` for each chunk of its rows, then ``(table index, None)``. A table without a query
    (``None``: formatted in Python) gets only ``(index, None)``, handed over while the connection
    is idle: the caller reads that table itself then.

    Each table's query is prepared once per connection (:func:`_prepare`), run once per
    :data:`PATIENT_BATCH` patients and streamed. The next statement is sent as soon as the one
    before has sent its last row, before that last chunk is handed over: PostgreSQL starts on it
    while the caller writes (measured on the S portfolio's CSV export: ~15% faster). While a
    statement runs the connection can run nothing else, and ``hold()`` is entered; when
    ``pause()`` says so (a progress report is due), the next statement waits until the chunks
    before it are handed over, ``hold()`` left meanwhile. Django's connections are per thread:
    nothing else uses this one while the caller is not asking for rows."""
    alias = next((c.alias for c in tables if c is not None), None)
    if alias is None:
        yield from ((index, None) for index in range(len(tables)))
        return
    db = connections[alias]
    statements = _executions(ctx, tables)
    db.ensure_connection()
    db.validate_no_broken_transaction()
    wire = _Wire(db, ctx.chunk_size)
    held: AbstractContextManager | None = None
    ready: list[tuple[int, tuple[bytes, int] | None]] = []  # to hand over
    ended = 0  # the tables before this index are ended in ``ready`` or handed over

    def end_tables(until: int) -> None:
        nonlocal ended
        ready.extend((i, None) for i in range(ended, until))
        ended = max(ended, until)

    with db.wrap_database_errors:
        try:
            for n, (index, statement) in enumerate(statements):
                if not wire.busy:
                    end_tables(index)
                    yield from _handed(ready)
                    held = hold()
                    held.__enter__()
                    wire.send(statement)
                yield from _all_but_last(index, wire.chunks(), ready)
                following = statements[n + 1][0] if n + 1 < len(statements) else len(tables)
                end_tables(following)  # this table, if its last statement, and empty ones
                python_between = any(t is None for t in tables[index + 1 : following])
                if following < len(tables) and not python_between and not pause():
                    wire.send(statements[n + 1][1])  # PostgreSQL starts on it meanwhile
                    yield from _handed(ready)
                elif held is not None:
                    held.__exit__(None, None, None)
                    held = None
        finally:
            wire.discard()
            if held is not None:
                held.__exit__(None, None, None)
    end_tables(len(tables))
    yield from ready


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
