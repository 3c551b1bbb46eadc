"""Visit schedules in the sponsor's panel (issue #7, part 1): schedules are study data.

Sponsor administrators add and edit a study's visit definitions; the model's ``clean()`` refuses
a negative window, a repeat interval of 0, a repeat without an end, and an anchor event the
study does not record (randomisation in a single-arm study), each message on its field.  After a
change, every enrolled patient of the study is re-planned (``patients/visit_services.py``).
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from studies.access import scope_for
from studies.admin_base import ScopedAdmin
from studies.audit import reason_for_change
from studies.models import VisitDefinition


@admin.register(VisitDefinition)
class VisitDefinitionAdmin(ScopedAdmin):
    list_display = [
        "study",
        "code",
        "name",
        "kind",
        "anchor",
        "offset_days",
        "window",
        "repeat",
    ]
    list_filter = [("study", admin.RelatedOnlyFieldListFilter), "kind", "anchor"]
    list_select_related = ["study"]
    search_fields = ["code", "name"]
    ordering = ["study", "anchor", "offset_days"]

    def get_queryset(self, request):
        scope = scope_for(request.user)
        qs = VisitDefinition.objects.select_related("study")
        return qs if scope.superuser else qs.filter(study_id__in=scope.study_ids)

    @admin.display(description=_("window (days)"))
    def window(self, obj: VisitDefinition) -> str:
        return f"-{obj.window_before_days} / +{obj.window_after_days}"

    @admin.display(description=_("repeats"))
    def repeat(self, obj: VisitDefinition) -> str:
        if not obj.repeat_every_days:
            return str(_("once"))
        parts = [str(_("every %(n)s d") % {"n": obj.repeat_every_days})]
        if obj.repeat_until_days:
            parts.append(str(_("up to day %(n)s") % {"n": obj.repeat_until_days}))
        if obj.until_progression:
            parts.append(str(_("until progression")))
        return ", ".join(parts)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        from patients.visit_services import study_visits_sync

        reason = form.cleaned_data.get("reason", "") if change else "created"
        with reason_for_change(reason or "visit schedule changed", user=request.user.pk):
            study_visits_sync(obj.study)
