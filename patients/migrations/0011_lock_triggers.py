"""Database triggers enforcing data locks on every table of case report form data."""

from django.db import migrations

from patients import locking


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0010_data_management"),
        ("lesions", "0003_irecist"),
        ("treatments", "0003_drug_cycle_bsa_blank"),
    ]

    operations = [
        migrations.RunSQL(locking.install_sql(), locking.uninstall_sql()),
    ]
