"""Two-factor authentication policy (TOTP, django-otp)."""

from __future__ import annotations

from studies.access import scope_for
from studies.roles import TWO_FACTOR_ROLES

_CACHE_ATTR = "_oligocrf_needs_2fa"


def requires_two_factor(user) -> bool:
    """Sponsor administrators, unblinded roles in blinded studies and superusers need TOTP."""
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if not user.is_authenticated:
        return False
    scope = scope_for(user)
    needed = user.is_superuser or scope.has_role_anywhere(TWO_FACTOR_ROLES)
    if not needed:
        # An unblinded membership of a double-blind study: read from the scope's one query.
        needed = any(g.double_blind_study and not g.blinded for g in scope.grants)
    setattr(user, _CACHE_ATTR, needed)
    return needed
