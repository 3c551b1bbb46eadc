"""Roles a user can hold in a study, and what each may do. The one place that says so."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    INVESTIGATOR = "investigator", _("Principal investigator")
    SUBINVESTIGATOR = "subinvestigator", _("Sub-investigator / research nurse")
    PLANNER = "planner", _("Radiotherapy planner / physicist (unblinded)")
    MONITOR = "monitor", _("Monitor (CRA)")
    DATA_MANAGER = "data_manager", _("Data manager")
    SPONSOR_ADMIN = "sponsor_admin", _("Sponsor administrator")
    STATISTICIAN = "statistician", _("Statistician")


# Site roles hold a membership of one study-site; sponsor roles hold all sites of the study.
# A monitor (CRA) may be assigned to given sites or to all of them.
SITE_ROLES = frozenset({Role.INVESTIGATOR, Role.SUBINVESTIGATOR, Role.PLANNER})
SPONSOR_ROLES = frozenset({Role.DATA_MANAGER, Role.SPONSOR_ADMIN, Role.STATISTICIAN})
EITHER_SCOPE_ROLES = frozenset({Role.MONITOR})

# Who enters data in the site's case report forms.
DATA_ENTRY_ROLES = frozenset({Role.INVESTIGATOR, Role.SUBINVESTIGATOR, Role.PLANNER})
# Who reads the audit trail of a record.
AUDIT_READER_ROLES = frozenset({Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN})
# Who configures the study (sites, activation, recruitment status).
STUDY_MANAGER_ROLES = frozenset({Role.SPONSOR_ADMIN, Role.DATA_MANAGER})
# Who works in the sponsor's admin panel.
STAFF_ROLES = frozenset({Role.SPONSOR_ADMIN, Role.DATA_MANAGER, Role.MONITOR, Role.STATISTICIAN})
# Roles that must always be unblinded (they prepare the arm-specific treatment).
ALWAYS_UNBLINDED_ROLES = frozenset({Role.PLANNER})
# Roles that must use two-factor authentication whatever the study.
TWO_FACTOR_ROLES = frozenset({Role.SPONSOR_ADMIN, Role.PLANNER})
# Who sees how full the randomisation list is (never which arm comes next).
RANDOMISATION_VIEWER_ROLES = frozenset({Role.STATISTICIAN, Role.DATA_MANAGER, Role.SPONSOR_ADMIN})
# Who opens, closes and re-opens data queries, and marks forms source-data verified (SDV only
# for monitors: see SDV_ROLES).
QUERY_MANAGER_ROLES = frozenset({Role.MONITOR, Role.DATA_MANAGER})
SDV_ROLES = frozenset({Role.MONITOR})
# Who signs a patient's casebook (21 CFR Part 11): the site's principal investigator.
SIGNER_ROLES = frozenset({Role.INVESTIGATOR})
# Who locks and unlocks data (database freeze before analysis).
LOCK_ROLES = frozenset({Role.DATA_MANAGER})
# Who exports the study's data.
EXPORT_ROLES = frozenset({Role.DATA_MANAGER, Role.STATISTICIAN})
# Who sees the sponsor's study dashboard (primary endpoints by arm only when unblinded).
DASHBOARD_ROLES = frozenset(
    {Role.DATA_MANAGER, Role.STATISTICIAN, Role.SPONSOR_ADMIN, Role.MONITOR}
)
