"""Writing an export file safely, and reporting progress while it is written.

The file is written as ``<name>.part`` and renamed to its final name (``os.replace``, atomic on
one file system) only once it is complete and flushed to disk: a reader never finds a final name
holding half an export. A failed export removes its part file; a crash (the process killed)
leaves it behind, and the retry deletes it before starting again from scratch.
"""

from __future__ import annotations

import csv
import io
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

PART_SUFFIX = ".part"
#: The progress of a running export is reported at most this often (seconds).
REPORT_EVERY_SECONDS = 1.0


def part_path(final: Path) -> Path:
    return final.with_name(final.name + PART_SUFFIX)


@contextmanager
def atomic_file(final: Path) -> Iterator[BinaryIO]:
    """A binary file that appears under ``final`` only if the block completes."""
    final.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(final)
    part.unlink(missing_ok=True)  # left by a crashed attempt: start from scratch
    final.unlink(missing_ok=True)
    try:
        with part.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
    except Exception:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, final)


class Progress:
    """Counts written rows and reports a percentage now and then (not on every row)."""

    def __init__(self, total: int, report: Callable[[int, int], None] | None) -> None:
        self.total = max(total, 1)
        self.rows = 0
        self._report = report
        self._every = REPORT_EVERY_SECONDS
        self._last = time.monotonic()
        self._held = False

    def add(self, n: int = 1) -> None:
        self.rows += n
        if not self._held:
            self._maybe_report()

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if self._report is not None and now - self._last >= self._every:
            self._last = now
            self._report(self.percent, self.rows)

    def due(self) -> bool:
        """Whether a report would be made now."""
        return self._report is not None and time.monotonic() - self._last >= self._every

    @contextmanager
    def held(self) -> Iterator[None]:
        """No report inside the block (a streamed query holds the connection the report would
        write with); one that fell due is made on leaving it."""
        self._held = True
        try:
            yield
        finally:
            self._held = False
        self._maybe_report()

    @property
    def percent(self) -> int:
        return min(99, self.rows * 100 // self.total)


@contextmanager
def zip_text(zf: zipfile.ZipFile, name: str) -> Iterator[io.TextIOWrapper]:
    """A UTF-8 text stream into one member of a zip file (written as it comes, not held)."""
    with zf.open(name, "w", force_zip64=True) as member:
        text = io.TextIOWrapper(member, encoding="utf-8", newline="")
        try:
            yield text
        finally:
            text.flush()
            text.detach()


def csv_writer(text: io.TextIOBase) -> csv.writer:
    """The CSV dialect of every export file (excel, CRLF line ends)."""
    return csv.writer(text, lineterminator="\r\n")


@contextmanager
def zip_csv(zf: zipfile.ZipFile, name: str) -> Iterator[csv.writer]:
    """A CSV writer streaming into one member of a zip file (nothing held in memory)."""
    with zip_text(zf, name) as text:
        yield csv_writer(text)


#: Deflate level of the zip exports: the fastest. Level 6 (zlib's default) took as long as
#: reading and formatting the rows, for files only about a quarter smaller.
COMPRESS_LEVEL = 1


def open_zip(out: BinaryIO) -> zipfile.ZipFile:
    return zipfile.ZipFile(
        out,
        "w",
        compression=zipfile.ZIP_DEFLATED,
        compresslevel=COMPRESS_LEVEL,
        allowZip64=True,
    )
