"""Lesions in the sponsor's panel: the audit trail of the measurements (read-only).

Measurements have no ``for_user``: their events are scoped through the scan's patient's site.
"""

from __future__ import annotations

from django.contrib import admin

from lesions.models import Measurement
from studies.admin_base import AuditEventAdmin
from studies.audit import event_model_for


class MeasurementEventAdmin(AuditEventAdmin):
    site_path = "assessment__patient__study_site"


admin.site.register(event_model_for(Measurement), MeasurementEventAdmin)
