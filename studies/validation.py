"""Model validation without redundant queries."""

from __future__ import annotations


class LoadedRelationsMixin:
    """``full_clean()`` without a query per foreign key the request has already read.

    Django's ``Model.clean_fields()`` checks that each foreign key's target exists with a
    ``SELECT 1`` per key, even when the related object is on the instance because the request
    read it a moment earlier (the patient from the scoped lookup, the CTCAE term from the form's
    choice field). Such keys are left out of ``clean_fields`` only: the object was read from
    the database in this request (through the form's queryset, so its ``limit_choices_to``
    applied), the key still equals its primary key, and the database's foreign-key constraint
    refuses a target deleted since. Unique and other constraints are validated as before.
    """

    def clean_fields(self, exclude=None):
        exclude = set(exclude or ())
        for field in self._meta.concrete_fields:
            if not field.many_to_one or field.name in exclude or not field.is_cached(self):
                continue
            related = field.get_cached_value(self)
            if (
                related is not None
                and related._state.db is not None
                and not related._state.adding
                and getattr(self, field.attname) == getattr(related, field.target_field.attname)
            ):
                exclude.add(field.name)
        return super().clean_fields(exclude=exclude)
