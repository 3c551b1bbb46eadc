"""CSV export: a zip of one CSV file per form type, with a data dictionary.

Every coded column is followed by ``<column>_label``, the code's label in the requester's
language. Values: ISO 8601 dates (date-times with the study's UTC offset), plain decimals, 1/0
for yes/no, empty for missing. ``data_dictionary.csv`` lists every column of every file with its
type, description and codes.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO

from django.utils.translation import gettext as _

from studies.exports.sources import (
    KEY_COLUMNS,
    TEXT,
    ExportContext,
    count_rows,
    fmt,
    table_rows,
)
from studies.exports.tables import Prepared, prepare
from studies.exports.writer import Progress, open_zip, zip_csv

DICTIONARY = "data_dictionary.csv"


def header(prepared: Prepared) -> list[str]:
    names = [c.name for c in KEY_COLUMNS]
    for column in prepared.columns:
        names.append(column.name)
        if column.name in prepared.codes:
            names.append(f"{column.name}_label")
    return names


def _write_table(zf: zipfile.ZipFile, ctx: ExportContext, prepared: Prepared, progress) -> None:
    coded = [prepared.codes.get(c.name) for c in prepared.columns]
    zone = ctx.zone
    with zip_csv(zf, f"{prepared.name}.csv") as out:
        out.writerow(header(prepared))
        for row in table_rows(ctx, prepared):
            _patient_id, record_id, subject_id, site, *values = row
            line = [subject_id or "", site, record_id]
            for value, codes in zip(values, coded, strict=True):
                text = fmt(value, zone)
                line.append(text)
                if codes is not None:
                    line.append(codes.get(text, ""))
            out.writerow(line)
            progress.add()


def _write_dictionary(zf: zipfile.ZipFile, tables: list[Prepared]) -> None:
    with zip_csv(zf, DICTIONARY) as out:
        out.writerow(["file", "column", "type", "description", "codes"])
        for prepared in tables:
            file = f"{prepared.name}.csv"
            for key in KEY_COLUMNS:
                out.writerow([file, key.name, key.type, str(key.description), ""])
            for column in prepared.columns:
                codes = prepared.codes.get(column.name)
                listed = "; ".join(f"{code}={label}" for code, label in (codes or {}).items())
                out.writerow([file, column.name, column.type, str(column.description), listed])
                if codes is not None:
                    label = _("Label of %(column)s") % {"column": column.name}
                    out.writerow([file, f"{column.name}_label", TEXT, label, ""])


def write_csv(ctx: ExportContext, out: BinaryIO, report=None) -> int:
    """Write the zip to ``out``; returns the number of data rows. Call in the export's language."""
    tables = prepare(ctx)
    progress = Progress(count_rows(ctx, tables), report)
    with open_zip(out) as zf:
        for prepared in tables:
            _write_table(zf, ctx, prepared, progress)
        _write_dictionary(zf, tables)
    return progress.rows
