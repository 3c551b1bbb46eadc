"""Base classes for the sponsor's admin panel: scoped, role-checked, reason-for-change enforced."""

from __future__ import annotations

import contextlib
import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.templatetags.admin_list import (
    ResultList,
    _boolean_icon,
    result_headers,
)
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import (
    FieldIsAForeignKeyColumnName,
    _get_non_gfk_field,
    display_for_field,
    display_for_value,
    get_fields_from_path,
    lookup_field,
    unquote,
)
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import dateformat, timezone
from django.utils.formats import get_format
from django.utils.functional import cached_property
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from studies.access import scope_for, site_q
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


# --- changelist rows --------------------------------------------------------------------------

#: A cell of the list: the row's object -> ``<td ...>...</td>``.
Cell = Callable[[models.Model], str]
_PK = "__pk__"  # stands for the primary key in a change URL reversed once per page


class FastChangeList(ChangeList):
    """Django's changelist, its rows rendered column by column with each column's work done once.

    Django's ``items_for_result`` repeats for every cell what is the same for the whole column
    (the field's lookup, the translated empty value and choice labels, the boolean icons' static
    URLs, the change URL's reverse and preserved filters) and renders each cell through the
    template engine: most of the time of a page of rows. Here each column is prepared once per
    page and a row is one string. The HTML is Django's, cell for cell; lists with editable
    fields, popups and ``to_field`` keep Django's own rendering.
    """

    def rows_context(self) -> dict | None:
        """The context of ``change_list_results.html`` as Django's ``result_list`` tag gives it
        (each row one pre-rendered item), or None for Django's own tag."""
        if self.formset or self.is_popup or self.to_field:
            return None
        objects = list(self.result_list)
        cells = _cells(self, objects[0]) if objects else []
        headers = list(result_headers(self))
        opts = self.opts
        return {
            "templates": [
                f"admin/{opts.app_label}/{opts.model_name}/change_list_results.html",
                f"admin/{opts.app_label}/change_list_results.html",
                "admin/change_list_results.html",
            ],
            "result_hidden_fields": [],  # only list_editable lists have hidden fields
            "result_headers": headers,
            "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
            "results": [
                ResultList(None, [SafeString("".join([cell(obj) for cell in cells]))])
                for obj in objects
            ],
        }


def _cells(cl: ChangeList, sample: models.Model) -> list[Cell]:
    """One renderer per column of ``cl.list_display`` (``items_for_result``'s logic)."""
    # The empty value once translated (Django's is lazy: translated again at each use).
    empty = conditional_escape(cl.model_admin.get_empty_value_display())
    change_url = _change_url(cl, sample)
    cells, first = [], True
    for index, name in enumerate(cl.list_display):
        links = cl.list_display_links
        linked = links is not None and ((first and not links) or name in links)
        tag = "th" if linked and first else "td"
        first = first and not linked
        field = _plain_field(cl, name)
        link = _Link(linked, change_url if linked else None)
        if field is None:
            cells.append(_generic_cell(cl, index, name, tag, link, empty))
        else:
            cells.append(_field_cell(field, name, tag, link, empty))
    return cells


def _plain_field(cl: ChangeList, name) -> models.Field | None:
    """The model field a column shows directly (not a callable, relation path or primary key)."""
    if not isinstance(name, str):
        return None
    try:
        field = _get_non_gfk_field(cl.lookup_opts, name)
    except (FieldDoesNotExist, FieldIsAForeignKeyColumnName):
        return None
    return None if field.auto_created else field


def _change_url(cl: ChangeList, sample: models.Model) -> Callable[[models.Model], str] | None:
    """The escaped change URL of a row with the list's filters preserved, or None (no link).

    Reversed once with a placeholder for the primary key; rows with a non-integer key, or a
    URL the placeholder would not give, are reversed one by one as Django does.
    """
    context = {"preserved_filters": cl.preserved_filters, "opts": cl.opts}

    def reversed_one(obj) -> str:
        return escape(add_preserved_filters(context, cl.url_for_result(obj)))

    try:
        sample_url = reversed_one(sample)
        opts = cl.opts
        name = f"admin:{opts.app_label}_{opts.model_name}_change"
        site = cl.model_admin.admin_site.name
        url = reverse(name, args=[_PK], current_app=site)
    except NoReverseMatch:
        return None
    prefix, _pk, suffix = escape(add_preserved_filters(context, url)).partition(_PK)
    key = cl.pk_attname
    sample_key = getattr(sample, key)
    if type(sample_key) is not int or f"{prefix}{sample_key}{suffix}" != sample_url:
        return reversed_one

    def one(obj) -> str:
        pk = getattr(obj, key)
        return f"{prefix}{pk}{suffix}" if type(pk) is int else reversed_one(obj)

    return one


@dataclass(frozen=True)
class _Link:
    """Whether a column links to the change page, and the URL of a row (None: not reversible,
    the column shows its text alone, as Django's)."""

    linked: bool
    url: Callable[[models.Model], str] | None

    def wrap(self, obj, html: str) -> str:
        return html if self.url is None else f'<a href="{self.url(obj)}">{html}</a>'


def _field_cell(field: models.Field, name: str, tag: str, link: _Link, empty: str) -> Cell:
    classes = f"field-{name}"
    if isinstance(field, (models.DateField, models.TimeField, models.ForeignKey)):
        classes += " nowrap"
    opening, closing = f'<{tag} class="{classes}">', f"</{tag}>"
    shown = _field_display(field, empty, avoid_link=link.linked)

    def cell(obj) -> str:
        try:
            value = getattr(obj, name)
        except ObjectDoesNotExist:
            html = empty
        else:
            html = conditional_escape(shown(value))
        return f"{opening}{link.wrap(obj, html)}{closing}"

    return cell


def _field_display(field: models.Field, empty: str, avoid_link: bool) -> Callable:
    """``display_for_field`` of one column, its translations, formats and icons made once.

    Choice labels and boolean icons are looked up; other values are shown once per distinct
    value on the page (grades, units and dates repeat) and dates through :func:`_date_text`.
    """
    if isinstance(field.remote_field, models.ManyToOneRel):
        return lambda value: empty if value is None else value
    if field.name != "password" and field.flatchoices:
        try:
            shown = {value: conditional_escape(label) for value, label in field.flatchoices}
        except TypeError:  # unhashable choices: Django's own path
            shown = {}
        else:
            return _memo(shown, lambda value: empty, field, empty)
    elif isinstance(field, models.BooleanField):
        icons = {value: _boolean_icon(value) for value in (True, False, None)}
        return lambda value: (
            icons[value]
            if value is None or value is True or value is False
            else display_for_field(value, field, empty)
        )
    if isinstance(field, models.DateField) and not isinstance(field, models.DateTimeField):
        date_format, language = get_format("DATE_FORMAT"), get_language()

        def date(value):  # formats.localize() of a date
            if type(value) is datetime.date:
                return _date_text(value, date_format, language)
            return display_for_field(value, field, empty)

        return _memo({}, date, field, empty)
    return _memo(
        {},
        lambda value: display_for_field(value, field, empty, avoid_link=avoid_link),
        field,
        empty,
    )


def _memo(shown: dict, display: Callable, field: models.Field, empty: str) -> Callable:
    """``display`` once per distinct value (``shown`` is filled as the page's rows come)."""

    def one(value):
        try:
            return shown[value]
        except KeyError:
            shown[value] = text = display(value)
            return text
        except TypeError:  # unhashable value
            return display_for_field(value, field, empty)

    return one


@functools.lru_cache(maxsize=4096)
def _date_text(value: datetime.date, date_format: str, language: str | None) -> str:
    """A date as ``formats.localize`` shows it: the active language, which ``language`` names
    (month names are translated), is part of the cache's key."""
    return dateformat.format(value, date_format)


def _generic_cell(cl: ChangeList, index: int, name, tag: str, link: _Link, empty: str) -> Cell:
    """A callable, property, relation path or primary key: ``items_for_result`` cell by cell."""
    label = name.__name__ if callable(name) else name  # Django's _coerce_field_name
    label = f"lambda{index}" if label == "<lambda>" else label

    def cell(obj) -> str:
        classes = [f"field-{label}"]
        try:
            field, attr, value = lookup_field(name, obj, cl.model_admin)
        except ObjectDoesNotExist:
            shown = empty
        else:
            shown, classes = _generic_display(cl, name, field, attr, value, empty, link, classes)
        html = link.wrap(obj, conditional_escape(shown))
        return f'<{tag} class="{" ".join(classes)}">{html}</{tag}>'

    return cell


def _generic_display(cl, name, field, attr, value, empty, link: _Link, classes):
    empty = getattr(attr, "empty_value_display", empty)
    if field is None and isinstance(name, str) and LOOKUP_SEP in name:
        with contextlib.suppress(FieldDoesNotExist):  # e.g. __str__
            field = get_fields_from_path(cl.model, name)[-1]
    if field is None or field.auto_created:
        if name == "action_checkbox":
            classes = ["action-checkbox"]
        boolean = getattr(attr, "boolean", False)
        if isinstance(attr, property) and hasattr(attr, "fget"):
            boolean = getattr(attr.fget, "boolean", False)
        if isinstance(value, (datetime.date, datetime.time)):
            classes.append("nowrap")
        return display_for_value(value, empty, boolean), classes
    if isinstance(field.remote_field, models.ManyToOneRel):
        shown = empty if value is None else value
    else:
        shown = display_for_field(value, field, empty, avoid_link=link.linked)
    if isinstance(field, (models.DateField, models.TimeField, models.ForeignKey)):
        classes.append("nowrap")
    return shown, classes


class FastListAdmin(admin.ModelAdmin):
    """A changelist of rows rendered by :class:`FastChangeList`."""

    change_list_template = "admin/fast_change_list.html"

    def get_changelist(self, request, **kwargs):
        return FastChangeList


# --- filters -----------------------------------------------------------------------------------


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
