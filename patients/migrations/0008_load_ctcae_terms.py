"""Load the 837 NCI CTCAE v5.0 terms (patients/data/ctcae_v5_terms.csv, see SOURCES.md there)."""

from django.db import migrations

from patients.ctcae_terms import load_terms


def load(apps, schema_editor):
    load_terms(apps.get_model("patients", "CtcaeTerm"))


def unload(apps, schema_editor):
    apps.get_model("patients", "CtcaeTerm").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("patients", "0007_safety")]
    operations = [migrations.RunPython(load, unload)]
