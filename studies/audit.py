"""The audit trail: one mechanism, django-pghistory triggers, for every model holding trial data.

PostgreSQL triggers write an event row for every insert, update and delete, whatever the path
(form, admin, ``QuerySet.update()``, bulk operations, raw SQL). Event tables are append-only
(``PGHISTORY_APPEND_ONLY``: triggers refuse UPDATE and DELETE on them). Who acted and why is the
pghistory *context*: the middleware attaches the user and URL of each request, services add the
reason for change (:func:`reason_for_change`), commands and tasks name themselves.

Reading: :func:`history_for` turns an object's events into rows with the old and new value of
each changed field, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pghistory
from django.contrib.auth import get_user_model
from django.db import models

# Fields that change on every save and mean nothing to a reader of the audit trail.
_IGNORED_FIELDS = {
    "pgh_id",
    "pgh_created_at",
    "pgh_label",
    "pgh_obj",
    "pgh_obj_id",
    "pgh_context",
    "pgh_context_id",
}


def audited():
    """Decorator tracking inserts, updates (new row) and deletes (old row) of a model."""
    return pghistory.track(
        pghistory.InsertEvent(),
        pghistory.UpdateEvent(),
        pghistory.DeleteEvent(),
        # The audit changelists filter on recent events ("last 7 days") and scope them by the
        # tracked row: by index, not a scan of millions of rows. A new Index per event model
        # (Django names it after the model).
        meta={"indexes": [models.Index(fields=["pgh_created_at", "pgh_obj"])]},
    )


def reason_for_change(reason: str, **extra: Any) -> pghistory.context:
    """Context manager attaching a reason (and any extra metadata) to every write inside it."""
    return pghistory.context(reason=reason, **extra)


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    old: Any
    new: Any


@dataclass(frozen=True)
class HistoryEntry:
    when: datetime
    action: str  # insert | update | delete
    user: str
    reason: str
    source: str  # URL, command or task that made the change
    changes: tuple[FieldChange, ...]


def event_model_for(model: type[models.Model]) -> type[models.Model]:
    """The pghistory event model tracking ``model``."""
    from django.apps import apps

    for candidate in apps.get_models():
        if (
            issubclass(candidate, pghistory.models.Event)
            and getattr(candidate, "pgh_tracked_model", None) is model
        ):
            return candidate
    raise LookupError(f"{model.__name__} is not audited")


def _display(field: models.Field | None, value: Any) -> Any:
    if field is not None and field.choices and value is not None:
        return dict(field.flatchoices).get(value, value)
    return value


def history_for(obj: models.Model) -> list[HistoryEntry]:
    """Every audited change of ``obj``, oldest first, with old and new values per field."""
    model = type(obj)
    event_model = event_model_for(model)
    events = list(
        event_model.objects.filter(pgh_obj_id=obj.pk)
        .select_related("pgh_context")
        .order_by("pgh_id")
    )
    tracked = [
        f
        for f in event_model._meta.concrete_fields
        if f.attname not in _IGNORED_FIELDS and f.name not in _IGNORED_FIELDS
    ]
    model_fields = {f.attname: f for f in model._meta.concrete_fields}
    user_ids = {e.pgh_context.metadata.get("user") for e in events if e.pgh_context_id}
    users = {
        u.pk: u.get_username()
        for u in get_user_model().objects.filter(pk__in=[i for i in user_ids if i])
    }
    entries: list[HistoryEntry] = []
    previous: dict[str, Any] = {}
    for event in events:
        current = {f.attname: getattr(event, f.attname) for f in tracked}
        changes = []
        for attname, new in current.items():
            old = previous.get(attname)
            if event.pgh_label == "update" and old == new:
                continue
            field = model_fields.get(attname)
            label = str(field.verbose_name) if field is not None else attname
            if event.pgh_label == "delete":
                changes.append(FieldChange(attname, label, _display(field, new), None))
            else:
                changes.append(
                    FieldChange(attname, label, _display(field, old), _display(field, new))
                )
        meta = event.pgh_context.metadata if event.pgh_context_id else {}
        entries.append(
            HistoryEntry(
                when=event.pgh_created_at,
                action=event.pgh_label,
                user=users.get(meta.get("user"), "") if meta.get("user") else "",
                reason=meta.get("reason", ""),
                source=meta.get("url") or meta.get("command") or meta.get("task") or "",
                changes=tuple(changes),
            )
        )
        previous = current
    return entries
