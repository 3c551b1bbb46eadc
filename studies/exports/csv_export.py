"""CSV export: a zip of one CSV file per form type, with a data dictionary.

Every coded column is followed by ``<column>_label``, the code's label in the requester's
language. Values: ISO 8601 dates (date-times with the study's UTC offset), plain decimals, 1/0
for yes/no, empty for missing. ``data_dictionary.csv`` lists every column of every file with its
type, description and codes.

Each line is written by PostgreSQL (``sql.csv_line``: quoting, labels, CRLF), a chunk of lines at
a time, and goes into the zip as the UTF-8 bytes the server sent; a table with a column only
Python formats goes through ``csv.writer``. The tables are read one after the other, each
streamed by the server, the next statement sent while the file before is being written
(``sources.chained_chunks``); the progress of the export is reported between statements. The
data dictionary is written once per process for the same tables, codes and language.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import closing
from itertools import batched
from typing import BinaryIO

from django.utils import translation
from django.utils.translation import gettext as _

from studies.exports import sources, sql
from studies.exports.sources import (
    FIRST_VALUE,
    KEY_COLUMNS,
    RECORD,
    SITE,
    SUBJECT,
    TEXT,
    ExportContext,
    count_rows,
    fmt,
    generic_plans,
    sql_row,
    table_rows,
    text_chunks,
)
from studies.exports.tables import Prepared, prepare
from studies.exports.writer import Progress, csv_writer, open_zip, zip_text

DICTIONARY = "data_dictionary.csv"


def header(prepared: Prepared) -> list[str]:
    names = [c.name for c in KEY_COLUMNS]
    for column in prepared.columns:
        names.append(column.name)
        if column.name in prepared.codes:
            names.append(f"{column.name}_label")
    return names


def _line_tokens(prepared: Prepared, row: sql.Row) -> list[sql.Token]:
    """The SQL of a row's CSV line: key columns, each column (and its label), CRLF."""
    fields = [(SUBJECT, None), (SITE, None), (RECORD, None)]
    for n, column in enumerate(prepared.columns, FIRST_VALUE):
        fields.append((n, prepared.codes.get(column.name)))
    return sql.csv_line(row, fields)


def _sql_lines(
    ctx: ExportContext, prepared: Prepared, row: sql.Row, progress: Progress
) -> Iterator[tuple[str, int]]:
    """The table's CSV lines, written by PostgreSQL, a chunk of lines at a time (the tables are
    read one after the other: each is streamed, ``sources.text_chunks``)."""
    what = ("csv", row.iso_dates)
    tokens = lambda: _line_tokens(prepared, row)  # noqa: E731
    for rows in text_chunks(ctx, prepared, (), what, tokens, hold=progress.held):
        yield "".join([line for (line,) in rows]), len(rows)


def _python_rows(ctx: ExportContext, prepared: Prepared, progress: Progress) -> Iterator[list[str]]:
    """The table's CSV rows formatted here (a column PostgreSQL cannot format as we do)."""
    coded = [prepared.codes.get(c.name) for c in prepared.columns]
    zone = ctx.zone
    for row in table_rows(ctx, prepared, hold=progress.held):
        _patient_id, record_id, subject_id, site, *values = row
        line = [subject_id or "", site, record_id]
        for value, codes in zip(values, coded, strict=True):
            text = fmt(value, zone)
            line.append(text)
            if codes is not None:
                line.append(codes.get(text, ""))
        yield line


def _write_table(zf: zipfile.ZipFile, ctx: ExportContext, prepared: Prepared, progress) -> None:
    """One CSV file, written a chunk of rows at a time."""
    row = sql_row(prepared)
    with zip_text(zf, f"{prepared.name}.csv") as text:
        out = csv_writer(text)
        out.writerow(header(prepared))
        if row is None:
            for rows in batched(_python_rows(ctx, prepared, progress), ctx.chunk_size):
                out.writerows(rows)
                progress.add(len(rows))
        else:
            for lines, count in _sql_lines(ctx, prepared, row, progress):
                text.write(lines)
                progress.add(count)


def _header_bytes(prepared: Prepared) -> bytes:
    text = io.StringIO()
    csv_writer(text).writerow(header(prepared))
    return text.getvalue().encode()


def _write_chained(zf: zipfile.ZipFile, ctx: ExportContext, tables: list[Prepared], progress):
    """Every file, the lines of the tables PostgreSQL formats read one statement after the other
    (``sources.chained_chunks``: each statement sent while the file before is being written)."""
    compiled = []
    for prepared in tables:
        row = sql_row(prepared)
        tokens = (lambda p=prepared, r=row: _line_tokens(p, r)) if row is not None else None
        what = ("csv", row.iso_dates) if row is not None else None
        compiled.append(None if row is None else sources.compiled(ctx, prepared, what, tokens))
    chunks = sources.chained_chunks(ctx, compiled, progress.held, progress.due)
    # Closed on the way out, a failure here included: the statement it may have sent ahead is
    # read off before anything else runs on the connection.
    with closing(chunks):
        _write_chunks(zf, ctx, tables, compiled, chunks, progress)


def _write_chunks(zf, ctx, tables, compiled, chunks, progress) -> None:
    """Each table's file from the chunks of ``chained_chunks`` (a Python table when handed)."""
    member = None
    try:
        for index, chunk in chunks:
            prepared = tables[index]
            if compiled[index] is None:  # formatted here; the connection is idle
                _write_table(zf, ctx, prepared, progress)
                continue
            if member is None:
                member = zf.open(f"{prepared.name}.csv", "w", force_zip64=True)
                member.write(_header_bytes(prepared))
            if chunk is None:
                member.close()
                member = None
                continue
            text, rows = chunk
            member.write(text)
            progress.add(rows)
    finally:
        if member is not None:  # a failure: the zip can close (the part file is deleted)
            member.close()


def _write_dictionary(zf: zipfile.ZipFile, tables: list[Prepared]) -> None:
    with zip_text(zf, DICTIONARY) as text:
        csv_writer(text).writerow(["file", "column", "type", "description", "codes"])
        text.write("".join([_dictionary_lines(prepared) for prepared in tables]))


#: The data dictionary's lines of a table: (language, table, columns, codes) -> CSV text.
_DICTIONARY_LINES: dict[tuple, str] = {}
#: At most this many (tables x blinding x languages x arms of studies): emptied past it.
DICTIONARY_MAX = 512


def _dictionary_lines(prepared: Prepared) -> str:
    """A table's lines of the data dictionary, written once per process for the same columns,
    codes and language (the descriptions are constant, their translations too)."""
    key = (
        translation.get_language(),
        prepared.name,
        tuple(c.name for c in prepared.columns),
        tuple((name, tuple(codes.items())) for name, codes in prepared.codes.items()),
    )
    found = _DICTIONARY_LINES.get(key)
    if found is None:
        text = io.StringIO()
        out = csv_writer(text)
        file = f"{prepared.name}.csv"
        for key_column in KEY_COLUMNS:
            out.writerow([file, key_column.name, key_column.type, str(key_column.description), ""])
        for column in prepared.columns:
            codes = prepared.codes.get(column.name)
            listed = "; ".join(f"{code}={label}" for code, label in (codes or {}).items())
            out.writerow([file, column.name, column.type, str(column.description), listed])
            if codes is not None:
                label = _("Label of %(column)s") % {"column": column.name}
                out.writerow([file, f"{column.name}_label", TEXT, label, ""])
        if len(_DICTIONARY_LINES) >= DICTIONARY_MAX:
            _DICTIONARY_LINES.clear()
        found = _DICTIONARY_LINES[key] = text.getvalue()
    return found


def write_csv(ctx: ExportContext, out: BinaryIO, report=None) -> int:
    """Write the zip to ``out``; returns the number of data rows. Call in the export's language."""
    tables = prepare(ctx)
    progress = Progress(count_rows(ctx, tables) if report else 0, report)
    aliases = [prepared.table.model._default_manager.db for prepared in tables]
    with open_zip(out) as zf, generic_plans(aliases):
        if len(set(aliases)) == 1 and sources.chains(aliases[0]):  # one database, streamed
            _write_chained(zf, ctx, tables, progress)
        else:
            for prepared in tables:
                _write_table(zf, ctx, prepared, progress)
        _write_dictionary(zf, tables)
    return progress.rows
