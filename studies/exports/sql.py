"""Export rows written by PostgreSQL: each row's CSV line or ODM items, formatted in the query.

Formatting a row in Python costs tens of microseconds (a call per value, a label lookup per coded
value, a writer call per row); PostgreSQL does the same in a fraction of that while it reads the
row. :class:`Text` is one such value: text built from the row's columns by a list of *tokens*
(SQL, a parameter, or a column of the row), compiled by Django like any other expression, so the
queryset keeps its scope, joins, blinding and order.

The text is byte for byte what :func:`studies.exports.sources.fmt`, :mod:`csv` and
:mod:`xml.sax.saxutils` write for the same values:

* ``fmt``: booleans ``1``/``0``, decimals as PostgreSQL prints ``numeric`` (what
  ``format(Decimal, "f")`` gives for a value read from it), ISO 8601 dates, integers and text as
  they are. Date-times (written in the study's time zone) and any other kind of field are left to
  Python: :func:`sql_kind` says which columns PostgreSQL may format.
* CSV (``csv.writer``, excel dialect, minimal quoting): a field holding ``,``, ``"``, CR or LF is
  quoted, its quotes doubled; ``None`` is an empty field.
* XML attributes (``saxutils.quoteattr``): ``&``, ``<``, ``>``, LF, CR and tab escaped; double
  quotes, or single quotes when the value holds a double quote and no single one, else double
  quotes with ``&quot;``.

Rows are built with ``||`` (NULL made empty where a column may hold it). A row whose text
columns hold no character to quote or escape (one test per row) takes the short way, without a
test per value; a coded column is written with its label from one ``CASE`` over its codes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Expression, TextField

#: Kinds of value PostgreSQL formats as ``fmt`` would.
TEXT, INT, DECIMAL, DATE, BOOL = "text", "int", "decimal", "date", "bool"
#: Characters that make a CSV field quoted, and an XML attribute escaped.
CSV_SPECIAL = "'[\",\\r\\n]'"
XML_SPECIAL = "'[&<>\"\\n\\r\\t]'"

#: A token: ("sql", constant SQL without "%"), ("param", a Python string), ("col", column index).
Token = tuple[str, object]
Tokens = list[Token]


def sql(text: str) -> Token:
    return ("sql", text)


def param(value: str) -> Token:
    return ("param", value)


def column(index: int) -> Token:
    return ("col", index)


class Text(Expression):
    """Text built in SQL from ``tokens`` over ``sources`` (expressions: the row's columns).

    A column used several times is compiled once and its SQL (and parameters) repeated.
    """

    output_field = TextField()

    def __init__(self, tokens: Sequence[Token], sources: Sequence[Expression]) -> None:
        super().__init__(output_field=TextField())
        self.tokens = tuple(tokens)
        self.sources = list(sources)

    def get_source_expressions(self) -> list[Expression]:
        return self.sources

    def set_source_expressions(self, exprs) -> None:
        self.sources = list(exprs)

    def as_sql(self, compiler, connection):
        compiled = [compiler.compile(source) for source in self.sources]
        parts: list[str] = []
        params: list[object] = []
        for kind, value in self.tokens:
            if kind == "sql":
                parts.append(value)
            elif kind == "param":
                parts.append("%s")
                params.append(value)
            else:
                text, used = compiled[value]
                parts.append(f"({text})")
                params.extend(used)
        return "".join(parts), params


# --- which columns PostgreSQL formats ----------------------------------------------------------


def _value_field(f: models.Field) -> models.Field:
    """The field whose values a column holds (a foreign key holds its target's)."""
    while f.is_relation and f.target_field is not f:
        f = f.target_field
    return f


def sql_kind(f: models.Field | None, annotated_text: bool = False) -> str | None:
    """How PostgreSQL formats a column read from field ``f``; None: only Python can."""
    if f is None:
        return TEXT if annotated_text else None
    f = _value_field(f)
    if hasattr(f, "from_db_value"):
        return None  # a custom field converted in Python
    if isinstance(f, models.BooleanField):
        return BOOL
    if isinstance(f, models.DateTimeField):
        return None  # written in the study's time zone, by Python
    if isinstance(f, models.DateField):
        return DATE
    if isinstance(f, models.DecimalField):
        return DECIMAL
    if isinstance(f, models.IntegerField | models.AutoField):
        return INT
    if isinstance(f, models.CharField | models.TextField):
        return TEXT
    return None


def iso_dates(alias: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the connection prints dates as ISO 8601 (DateStyle ISO, the default)."""
    db = connections[alias]
    db.ensure_connection()
    info = getattr(db.connection, "info", None)
    style = info.parameter_status("DateStyle") if info is not None else None
    return bool(style) and str(style).upper().startswith("ISO")


@dataclass(frozen=True)
class Row:
    """The columns of a row: their index in the query, kind and whether they may be NULL; and
    how the connection prints dates."""

    kinds: dict[int, str]
    nullable: frozenset[int] = frozenset()
    iso_dates: bool = True

    def text(self, index: int) -> Tokens:
        """The column as ``fmt`` writes it, as text (NULL left NULL)."""
        c, kind = column(index), self.kinds[index]
        if kind == TEXT:
            return [c]
        if kind == BOOL:
            return [sql("CASE "), c, sql(" WHEN true THEN '1' WHEN false THEN '0' END")]
        if kind == DATE and not self.iso_dates:
            return [sql("to_char("), c, sql(", 'YYYY-MM-DD')")]
        return [sql("("), c, sql(")::text")]  # numbers, and dates in DateStyle ISO

    def filled(self, index: int) -> Tokens:
        """The column as text, empty for NULL."""
        if index in self.nullable:
            return [sql("COALESCE("), *self.text(index), sql(", '')")]
        return self.text(index)

    def holds(self, indexes: Sequence[int], special: str) -> Tokens | None:
        """True when a text column among ``indexes`` holds one of ``special`` (None: no text)."""
        texts = [self.filled(i) for i in indexes if self.kinds[i] == TEXT]
        return [*chain(texts), sql(f" ~ {special}")] if texts else None


def chain(pieces: Sequence[Tokens]) -> Tokens:
    """The pieces (text, never NULL) joined with ``||``."""
    tokens: Tokens = []
    for n, piece in enumerate(pieces):
        tokens += [sql(" || (") if n else sql("("), *piece, sql(")")]
    return tokens or [sql("''")]


def either(condition: Tokens | None, then: Tokens, otherwise: Tokens) -> Tokens:
    """``then`` where ``condition`` holds, else ``otherwise`` (always, without a condition)."""
    if condition is None:
        return otherwise
    return [sql("CASE WHEN "), *condition, sql(" THEN "), *then, sql(" ELSE "), *otherwise]


# SQL string literals used below.
DQ = "'\"'"  # a double quote
SQ = "''''"  # a single quote


# --- CSV ---------------------------------------------------------------------------------------


def csv_field(text: str) -> str:
    """One field as ``csv.writer`` writes it (codes and labels, quoted here once)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([text, ""])
    return out.getvalue()[:-2]


def _csv_value(row: Row, index: int, quoted: bool) -> Tokens:
    """The column as a CSV field (quoted if ``quoted`` and need be; empty for NULL)."""
    if not quoted or row.kinds[index] != TEXT:
        return row.filled(index)
    c = column(index)
    value = [
        sql("CASE WHEN "),
        c,
        sql(f" ~ {CSV_SPECIAL} THEN {DQ} || replace("),
        c,
        sql(f", {DQ}, '\"\"') || {DQ} ELSE "),
        c,
        sql(" END"),
    ]
    return [sql("COALESCE("), *value, sql(", '')")] if index in row.nullable else value


def _csv_coded(row: Row, index: int, codes: dict[str, str], lead: str, trail: str) -> Tokens:
    """The column and its label: two CSV fields, written whole for a known code; ``lead`` and
    ``trail`` (separators, the line's end) are written with them, in the same constant."""
    if row.kinds[index] == BOOL:
        # Straight from the boolean: its code is "1" or "0" (fmt), or empty for NULL.
        whole = {code: f"{code},{csv_field(codes.get(code, ''))}" for code in ("1", "0", "")}
        return [
            sql("CASE "),
            column(index),
            sql(" WHEN true THEN "),
            param(f"{lead}{whole['1']}{trail}"),
            sql(" WHEN false THEN "),
            param(f"{lead}{whole['0']}{trail}"),
            sql(" ELSE "),
            param(f"{lead}{whole['']}{trail}"),
            sql(" END"),
        ]
    tokens = [sql("CASE COALESCE("), *row.text(index), sql(", '')")]
    for code, label in codes.items():
        whole = f"{csv_field(code)},{csv_field(label)}"
        tokens += [sql(" WHEN "), param(code), sql(" THEN "), param(f"{lead}{whole}{trail}")]
    value = _csv_value(row, index, quoted=True)
    otherwise = chain([*([[param(lead)]] if lead else []), value, [param(f",{trail}")]])
    return [*tokens, sql(" ELSE "), *otherwise, sql(" END")]


#: The end of a CSV line.
CRLF = "\r\n"


def csv_line(row: Row, fields: Sequence[tuple[int, dict[str, str] | None]]) -> Tokens:
    """A CSV line (CRLF included): each column ``(index, codes)``, its label after it if coded.

    Quoting is tested once per row, over the text columns that are not coded (a coded column
    tests its own value when it is not one of its codes). A coded column writes the separators
    around it (and the line's end after it) with its code and label: one concatenation per
    column, not three."""
    coded = [codes is not None for _index, codes in fields]
    last = len(fields) - 1

    def line(quoted: bool) -> Tokens:
        pieces: list[Tokens] = []
        for n, (index, codes) in enumerate(fields):
            if codes is None:
                if n and not coded[n - 1]:
                    pieces.append([sql("','")])
                pieces.append(_csv_value(row, index, quoted))
                continue
            lead = "," if n else ""
            trail = CRLF if n == last else ("" if coded[n + 1] else ",")
            pieces.append(_csv_coded(row, index, codes, lead, trail))
        if not coded[last]:
            pieces.append([sql("chr(13) || chr(10)")])
        return chain(pieces)

    plain = [index for index, codes in fields if codes is None]
    special = row.holds(plain, CSV_SPECIAL)
    tokens = either(special, line(quoted=True), line(quoted=False))
    return [*tokens, sql(" END")] if special is not None else tokens


# --- XML ---------------------------------------------------------------------------------------


def _xml_escaped(value: Tokens) -> Tokens:
    tokens = value
    for char, entity in (
        ("'&'", "'&amp;'"),
        ("'>'", "'&gt;'"),
        ("'<'", "'&lt;'"),
        ("chr(10)", "'&#10;'"),
        ("chr(13)", "'&#13;'"),
        ("chr(9)", "'&#9;'"),
    ):
        tokens = [sql("replace("), *tokens, sql(f", {char}, {entity})")]
    return tokens


def _xml_attribute(value: Tokens) -> Tokens:
    """``quoteattr`` of a text value that may hold anything."""
    escaped = _xml_escaped(value)
    return [
        sql("CASE WHEN strpos("),
        *value,
        sql(f", {DQ}) = 0 THEN {DQ} || "),
        *escaped,
        sql(f" || {DQ} WHEN strpos("),
        *value,
        sql(f", {SQ}) = 0 THEN {SQ} || "),
        *escaped,
        sql(f" || {SQ} ELSE {DQ} || replace("),
        *escaped,
        sql(f", {DQ}, '&quot;') || {DQ} END"),
    ]


def xml_items(row: Row, items: Sequence[tuple[int, str]]) -> Tokens:
    """``<ItemData ItemOID=... Value=.../>`` and a newline for each ``(index, item OID)`` whose
    value is neither NULL nor empty; the empty string when there is none.

    Escaping is tested once per row, over its text columns."""

    def item(index: int, oid: str, escaped: bool) -> Tokens:
        c, text = column(index), row.kinds[index] == TEXT
        start = f"<ItemData ItemOID={quoteattr(oid)} Value="
        if escaped and text:
            value = chain([[param(start)], _xml_attribute([c]), [param("/>\n")]])
        else:
            value = chain([[param(start + '"')], row.text(index), [param('"/>\n')]])
        if text:
            present = [c, sql(" <> ''")]
        elif index in row.nullable:
            present = [c, sql(" IS NOT NULL")]
        else:
            return value
        return [sql("CASE WHEN "), *present, sql(" THEN "), *value, sql(" ELSE '' END")]

    def all_items(escaped: bool) -> Tokens:
        return chain([item(index, oid, escaped) for index, oid in items])

    special = row.holds([index for index, _oid in items], XML_SPECIAL)
    tokens = either(special, all_items(escaped=True), all_items(escaped=False))
    return [*tokens, sql(" END")] if special is not None else tokens
