"""Load the NCI CTCAE v5.0 term list (patients/data/ctcae_v5_terms.csv; provenance in SOURCES.md).

Used by migration 0008 (with the historical model) and by ``ensure_terms`` (tests and commands
that run after a database flush, which empties the migration-loaded rows).
"""

from __future__ import annotations

import csv
from pathlib import Path

CSV = Path(__file__).resolve().parent / "data" / "ctcae_v5_terms.csv"
COLUMNS = ("soc", "term", "definition", "grade1", "grade2", "grade3", "grade4", "grade5")


def load_terms(model) -> int:
    """Insert every term into ``model`` (an empty CtcaeTerm table); return the count."""
    with CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    model.objects.bulk_create(
        [model(meddra_code=int(row["meddra_code"]), **{c: row[c] for c in COLUMNS}) for row in rows]
    )
    return len(rows)


def ensure_terms() -> None:
    """Load the terms if the table is empty."""
    from patients.models import CtcaeTerm

    if not CtcaeTerm.objects.exists():
        load_terms(CtcaeTerm)
