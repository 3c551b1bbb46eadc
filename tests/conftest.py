"""Shared fixtures: a small world of two studies, three sites and one named user per role.

Study S1 (open, randomised) runs at sites A and B; study S2 (double-blind) at site C.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from studies.models import Study
from studies.roles import Role
from tests.factories import (
    PASSWORD,
    ArmFactory,
    MembershipFactory,
    PatientFactory,
    StudyFactory,
    StudySiteFactory,
    UserFactory,
)


@dataclass
class World:
    s1: object
    s2: object
    site_a: object
    site_b: object
    site_c: object
    patient_a: object
    patient_b: object
    patient_c: object
    users: dict

    # role name -> objects that user must not see
    def user(self, name: str):
        return self.users[name]


# name -> (study attr, site attr or None, role, blinded)
ROLE_USERS = {
    "alice_pi": ("s1", "site_a", Role.INVESTIGATOR, False),
    "nina_nurse": ("s1", "site_a", Role.SUBINVESTIGATOR, False),
    "bob_pi_site_b": ("s1", "site_b", Role.INVESTIGATOR, False),
    "carl_monitor": ("s1", None, Role.MONITOR, True),
    "dora_datamanager": ("s1", None, Role.DATA_MANAGER, True),
    "sam_sponsor": ("s1", None, Role.SPONSOR_ADMIN, True),
    "tom_statistician": ("s1", None, Role.STATISTICIAN, True),
    "una_unblinded_stat": ("s2", None, Role.STATISTICIAN, False),
    "pete_planner": ("s2", "site_c", Role.PLANNER, False),
}


@pytest.fixture(autouse=True)
def _english_by_default():
    """Services called directly speak English unless a test says otherwise (requests switch
    language through the locale middleware, which leaves the thread's language behind)."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture
def world(db) -> World:
    s1 = StudyFactory(code="S1", acronym="S1-TRIAL", blinding=Study.Blinding.OPEN)
    s2 = StudyFactory(code="S2", acronym="S2-BLIND", blinding=Study.Blinding.DOUBLE_BLIND)
    for study in (s1, s2):
        ArmFactory(study=study, code="A")
        ArmFactory(study=study, code="B")
    site_a = StudySiteFactory(study=s1, number="01", site__institution="Alpha Institute")
    site_b = StudySiteFactory(study=s1, number="02", site__institution="Beta Hospital")
    site_c = StudySiteFactory(study=s2, number="01", site__institution="Gamma Centre")
    objs = {"s1": s1, "s2": s2, "site_a": site_a, "site_b": site_b, "site_c": site_c}
    users = {}
    for name, (study_attr, site_attr, role, blinded) in ROLE_USERS.items():
        user = UserFactory(
            username=name,
            is_staff=role
            in {Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN, Role.STATISTICIAN},
        )
        MembershipFactory(
            user=user,
            study=objs[study_attr],
            study_site=objs[site_attr] if site_attr else None,
            role=role,
            blinded=blinded,
        )
        users[name] = user
    return World(
        s1=s1,
        s2=s2,
        site_a=site_a,
        site_b=site_b,
        site_c=site_c,
        patient_a=PatientFactory(study_site=site_a, subject_id="S1-01-001"),
        patient_b=PatientFactory(study_site=site_b, subject_id="S1-02-001"),
        patient_c=PatientFactory(study_site=site_c, subject_id="S2-01-001"),
        users=users,
    )


@pytest.fixture(scope="session")
def celery_worker():
    """A real Celery worker (in a thread) consuming the real Redis broker."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.fixture
def login(client):
    """Log a user in; users whose role needs 2FA are marked as verified with a TOTP device."""

    def _login(user, *, verified: bool = True):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from studies.security import requires_two_factor

        client.force_login(user)
        if verified and requires_two_factor(user):
            device, _ = TOTPDevice.objects.get_or_create(
                user=user, name="test", defaults={"confirmed": True}
            )
            session = client.session
            session["otp_device_id"] = device.persistent_id
            session.save()
        return client

    return _login


__all__ = ["PASSWORD", "ROLE_USERS", "World"]
