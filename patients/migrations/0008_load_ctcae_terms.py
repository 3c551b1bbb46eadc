"""Load the 837 NCI CTCAE v5.0 terms (patients/data/ctcae_v5_terms.csv, see SOURCES.md there)."""

import csv
from pathlib import Path

from django.db import migrations

CSV = Path(__file__).resolve().parent.parent / "data" / "ctcae_v5_terms.csv"
COLUMNS = ("soc", "term", "definition", "grade1", "grade2", "grade3", "grade4", "grade5")


def load(apps, schema_editor):
    CtcaeTerm = apps.get_model("patients", "CtcaeTerm")
    with CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    CtcaeTerm.objects.bulk_create(
        [
            CtcaeTerm(meddra_code=int(row["meddra_code"]), **{c: row[c] for c in COLUMNS})
            for row in rows
        ]
    )


def unload(apps, schema_editor):
    apps.get_model("patients", "CtcaeTerm").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("patients", "0007_safety")]
    operations = [migrations.RunPython(load, unload)]
