"""Base classes for the sponsor's admin panel: scoped, role-checked, reason-for-change enforced."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.utils import (
    unquote,
)
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from studies.access import scope_for, site_q
from studies.admin_rows import FastListAdmin
from studies.audit import history_for, reason_for_change
from studies.roles import AUDIT_READER_ROLES, STAFF_ROLES, Role

SPONSOR_ADMIN = frozenset({Role.SPONSOR_ADMIN})


class ReasonAdminForm(forms.ModelForm):
    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=_("Required when changing saved data; recorded in the audit trail."),
    )

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and self.has_changed() and not cleaned.get("reason", "").strip():
            self.add_error("reason", _("Give a reason for changing saved data (audit trail)."))
        return cleaned


class InScopeStudyFilter(admin.RelatedFieldListFilter):
    """The studies of the user's memberships, in one light query.

    Django's filter lists every study of the database (whole rows); the list shows only rows of
    the user's studies, so other studies are of no use (and their names none of the user's
    business). Same parameter and counts (facets) as Django's filter.
    """

    def field_choices(self, field, request, model_admin):
        from studies.models import Study

        scope = scope_for(request.user)
        studies = Study.objects.only("pk", "code", "acronym")  # what __str__ reads
        if not scope.superuser:
            studies = studies.filter(pk__in=scope.study_ids)
        return [(study.pk, str(study)) for study in studies]


class InScopeSiteFilter(admin.RelatedFieldListFilter):
    """The institutions of the study-sites the user may see, in one light query."""

    def field_choices(self, field, request, model_admin):
        from studies.models import Site, StudySite

        visible = StudySite.objects.filter(site_q(request.user)).values("site_id")
        sites = Site.objects.filter(pk__in=visible).only("pk", "institution", "city")
        return [(site.pk, str(site)) for site in sites]


class ScopedAdmin(FastListAdmin):
    """Lists only what the user's memberships open; sponsor administrators write, staff read.

    Subclasses say how to reach the study of an object with ``study_path`` ("" for Study).
    """

    form = ReasonAdminForm
    study_path = "study"

    def get_queryset(self, request):
        return self.model.objects.for_user(request.user)

    def study_id_of(self, obj) -> int:
        if not self.study_path:
            return obj.pk
        target = obj
        for part in self.study_path.split("__"):
            target = getattr(target, part)
        return target.pk

    def has_view_permission(self, request, obj=None) -> bool:
        return scope_for(request.user).has_role_anywhere(STAFF_ROLES)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def can_read_history(self, request, obj) -> bool:
        return scope_for(request.user).has_role(AUDIT_READER_ROLES, self.study_id_of(obj))

    def has_add_permission(self, request) -> bool:
        return scope_for(request.user).has_role_anywhere(SPONSOR_ADMIN)

    def has_change_permission(self, request, obj=None) -> bool:
        scope = scope_for(request.user)
        if obj is None:
            return scope.has_role_anywhere(SPONSOR_ADMIN)
        return scope.has_role(SPONSOR_ADMIN, self.study_id_of(obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Offer only the studies (and their sites) this user administers."""
        from studies.models import Arm, Study, StudySite

        scope = scope_for(request.user)
        if not scope.superuser:
            administered = scope.study_ids_with(SPONSOR_ADMIN)
            if db_field.related_model is Study:
                kwargs["queryset"] = Study.objects.filter(pk__in=administered)
            elif db_field.related_model is Arm:
                # Arms of a double-blind study are offered to unblinded users only.
                kwargs["queryset"] = Arm.objects.for_user(request.user).filter(
                    study_id__in=administered
                )
            elif db_field.related_model is StudySite:
                kwargs["queryset"] = StudySite.objects.filter(
                    study_id__in=administered
                ).select_related("study", "site")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def history_view(self, request, object_id, extra_context=None):
        """The admin's History button shows the audit trail (old -> new, who, when, why)."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not self.can_read_history(request, obj):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "object": obj,
            "entries": history_for(obj),
            "title": _("Audit trail: %(object)s") % {"object": obj},
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/audit_history.html", context)

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        # Bulk deletion would bypass the reason for change.
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)
        return actions

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        fields = [f for _name, opts in fieldsets for f in opts["fields"] if f != "reason"]
        base = [(None, {"fields": fields})]
        if obj is not None and self.has_change_permission(request, obj):
            base.append((_("Reason for change"), {"fields": ["reason"]}))
        return base

    def save_model(self, request, obj, form, change):
        with reason_for_change(form.cleaned_data.get("reason", "") if change else "created"):
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        with reason_for_change(form.cleaned_data.get("reason", "") if change else "created"):
            super().save_related(request, form, formsets, change)

    def delete_view(self, request, object_id, extra_context=None):
        if request.method == "POST":
            reason = request.POST.get("reason", "").strip()
            if not reason:
                messages.error(request, _("Give a reason for deleting this record (audit trail)."))
                return HttpResponseRedirect(request.path)
            with reason_for_change(reason):
                return super().delete_view(request, object_id, extra_context)
        return super().delete_view(request, object_id, extra_context)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Outside the user's scope looks exactly like not existing: 404, never a hint.
        raise Http404


class ReadOnlyLogAdmin(admin.ModelAdmin):
    """A log the application writes (report deliveries, exports): staff read it, nobody edits;
    subclasses scope ``get_queryset``. Out of scope looks exactly like not existing (404)."""

    def has_view_permission(self, request, obj=None) -> bool:
        return scope_for(request.user).has_role_anywhere(STAFF_ROLES)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404


class CappedCountPaginator(Paginator):
    """A paginator for tables of millions of rows: it counts at most ``cap`` rows.

    ``SELECT count(*) FROM (SELECT ... LIMIT cap + 1)`` stops reading at the cap, so the count
    costs the same whatever the size of the table.  Past the cap, the list has ``cap`` rows
    (``cap / per_page`` pages) and says so (``capped``): the user narrows it with the filters.
    """

    cap = 10_000

    @cached_property
    def _counted(self) -> int:
        rows = self.object_list
        if hasattr(rows, "order_by"):
            return rows.order_by()[: self.cap + 1].count()
        return len(rows)

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.cap)

    @property
    def capped(self) -> bool:
        """More rows match than were counted."""
        return self._counted > self.cap


#: Rows per page of the long lists (patients, adverse events, lab results, audit events; Django's
#: default is 100). A page's cost is mostly its rows: 50 rows of 7 to 9 columns are about the
#: cells of a plain 100-row, 3-column changelist. These lists are read filtered or searched
#: (study, site, grade, subject id), rarely paged through.
LONG_LIST_PER_PAGE = 50


class CountSafeAdmin(FastListAdmin):
    """A changelist whose cost does not grow with the table: counts capped, no full count."""

    paginator = CappedCountPaginator
    list_per_page = LONG_LIST_PER_PAGE
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice, over the whole table
    change_list_template = "admin/capped_change_list.html"


class RecentFilter(admin.SimpleListFilter):
    """Rows of the last day, week, month or year by ``field`` (a range on an index-friendly
    column: no query to list the choices, unlike ``date_hierarchy``)."""

    title = _("when")
    parameter_name = "within"
    field = "pgh_created_at"
    dates = False  # True when ``field`` is a DateField
    SPANS = {"1d": 1, "7d": 7, "30d": 30, "365d": 365}

    def lookups(self, request, model_admin):
        return [
            ("1d", _("Last 24 hours")),
            ("7d", _("Last 7 days")),
            ("30d", _("Last 30 days")),
            ("365d", _("Last year")),
        ]

    def queryset(self, request, queryset):
        days = self.SPANS.get(self.value() or "")
        if days is None:
            return queryset
        since = timezone.now() - timedelta(days=days)
        if self.dates:
            since = timezone.localdate(since)
        return queryset.filter(**{f"{self.field}__gte": since})


class GradeFilter(admin.SimpleListFilter):
    """CTCAE grades as fixed choices (listing the distinct grades would read every row)."""

    title = _("grade")
    parameter_name = "grade"
    GRADES = (0, 1, 2, 3, 4, 5)

    def lookups(self, request, model_admin):
        return [(str(g), str(g)) for g in self.GRADES]

    def queryset(self, request, queryset):
        if self.value() in {str(g) for g in self.GRADES}:
            return queryset.filter(grade=int(self.value()))
        return queryset


class EventLabelFilter(admin.SimpleListFilter):
    """Insert, update or delete: fixed choices (listing the distinct labels would read every
    row of the audit table)."""

    title = _("action")
    parameter_name = "pgh_label"

    def lookups(self, request, model_admin):
        return [("insert", _("insert")), ("update", _("update")), ("delete", _("delete"))]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(pgh_label=self.value())
        return queryset


class AuditEventAdmin(CountSafeAdmin):
    """Read-only list of audit events; rows can be neither added, changed nor deleted.

    Built for audit tables of millions of rows: newest first by the primary key (the first page
    is an index scan), counts capped, no date hierarchy, and the user's scope applied as
    ``pgh_obj_id IN (the tracked rows the user may see)``.
    """

    list_display = ["pgh_created_at", "pgh_label", "pgh_obj_id", "acting_user", "reason"]
    list_filter = [EventLabelFilter, RecentFilter]
    search_fields = ["pgh_obj_id"]  # see get_search_results
    search_help_text = _("The id of the audited record.")
    list_select_related = ["pgh_context"]
    ordering = ["-pgh_id"]
    #: Path from the tracked model to its study-site, for tracked models without ``for_user``.
    site_path: str | None = None

    def visible_objects(self, request):
        """The tracked rows the user may see."""
        tracked = self.model.pgh_tracked_model
        if self.site_path is not None:
            return tracked.objects.filter(site_q(request.user, self.site_path))
        return tracked.objects.for_user(request.user)

    def get_queryset(self, request):
        visible = self.visible_objects(request).values("pk")
        return super().get_queryset(request).filter(pgh_obj_id__in=visible)

    def get_search_results(self, request, queryset, search_term):
        """The events of one record, by its id (an index lookup, never a text scan)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if not term.isdigit():
            return queryset.none(), False
        return queryset.filter(pgh_obj_id=int(term)), False

    @admin.display(description=_("user"))
    def acting_user(self, event) -> str:
        return str(event.pgh_context.metadata.get("user", "")) if event.pgh_context_id else ""

    @admin.display(description=_("reason for change"))
    def reason(self, event) -> str:
        return event.pgh_context.metadata.get("reason", "") if event.pgh_context_id else ""

    def has_view_permission(self, request, obj=None) -> bool:
        return scope_for(request.user).has_role_anywhere(AUDIT_READER_ROLES)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404
