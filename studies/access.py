"""Who may see and do what: the one place that scopes trial data to the user's memberships.

Every read of trial data goes through a ``for_user(user)`` queryset method built on
:func:`site_q`, and every request lookup through a ``get_<object>_for_user`` helper that answers
404 when the user cannot see the object and 403 when they may only read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from studies.roles import Role

_CACHE_ATTR = "_oligocrf_scope"


@dataclass(frozen=True)
class Grant:
    study_id: int
    study_site_id: int | None  # None: every site of the study
    role: str
    blinded: bool
    double_blind_study: bool = False  # the study is double-blind (two-factor policy)


@dataclass(frozen=True)
class Scope:
    """A user's active memberships, loaded once per request."""

    superuser: bool
    grants: tuple[Grant, ...]

    @property
    def study_ids(self) -> frozenset[int]:
        return frozenset(g.study_id for g in self.grants)

    @property
    def all_sites_study_ids(self) -> frozenset[int]:
        return frozenset(g.study_id for g in self.grants if g.study_site_id is None)

    @property
    def site_ids(self) -> frozenset[int]:
        return frozenset(g.study_site_id for g in self.grants if g.study_site_id is not None)

    def study_ids_with(self, roles: frozenset[str]) -> frozenset[int]:
        """Studies in which the user holds one of ``roles`` (at any site)."""
        return frozenset(g.study_id for g in self.grants if g.role in roles)

    def roles_at(self, study_id: int, study_site_id: int | None = None) -> frozenset[str]:
        """Roles that apply at a study-site (or, with no site, anywhere in the study)."""
        return frozenset(
            g.role
            for g in self.grants
            if g.study_id == study_id
            and (
                g.study_site_id is None or study_site_id is None or g.study_site_id == study_site_id
            )
        )

    def has_role(
        self, roles: frozenset[str], study_id: int, study_site_id: int | None = None
    ) -> bool:
        return self.superuser or bool(self.roles_at(study_id, study_site_id) & roles)

    def has_role_anywhere(self, roles: frozenset[str]) -> bool:
        return self.superuser or any(g.role in roles for g in self.grants)

    def sees_site(self, study_id: int, study_site_id: int) -> bool:
        """Whether rows of this study-site are visible: :func:`site_q` for one row in hand."""
        return (
            self.superuser or study_id in self.all_sites_study_ids or study_site_id in self.site_ids
        )


def scope_for(user) -> Scope:
    """The user's scope, cached on the user object for the rest of the request."""
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        scope = Scope(superuser=False, grants=())
    else:
        from studies.models import Membership, Study

        rows = Membership.objects.filter(user=user, is_active=True).values_list(
            "study_id", "study_site_id", "role", "blinded", "study__blinding"
        )
        scope = Scope(
            superuser=user.is_superuser,
            grants=tuple(
                Grant(*row[:4], double_blind_study=row[4] == Study.Blinding.DOUBLE_BLIND)
                for row in rows
            ),
        )
    setattr(user, _CACHE_ATTR, scope)
    return scope


def forget_scope(user) -> None:
    """Drop the cached scope (after memberships change within a request)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def site_q(user, path: str = "") -> Q:
    """Filter on rows whose study-site (reached by ``path``; "" for StudySite itself) is visible.

    Sponsor-wide memberships open every site of their study, site memberships their site only.
    """
    scope = scope_for(user)
    if scope.superuser:
        return Q()
    study_field = f"{path}__study_id" if path else "study_id"
    site_field = f"{path}_id" if path else "pk"
    return Q(**{f"{study_field}__in": scope.all_sites_study_ids}) | Q(
        **{f"{site_field}__in": scope.site_ids}
    )


def require(allowed: bool) -> None:
    """Raise 403 unless ``allowed``: for users who can see an object but not act on it."""
    if not allowed:
        raise PermissionDenied


__all__ = ["Grant", "Role", "Scope", "forget_scope", "require", "scope_for", "site_q"]
