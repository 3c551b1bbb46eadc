"""A blinded user never sees an arm: every page of the project, as every blinded role.

Arms carry unique marker names; a randomised patient of the double-blind study S2 is allocated.
Every URL pattern is rendered (GET) with the world's S2 objects and searched for the markers.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from patients.models import Allocation
from studies.models import Arm
from studies.roles import Role
from tests.cross.test_access import _url_for, targets_at
from tests.cross.urlwalk import walk
from tests.factories import MembershipFactory, UserFactory

MARKERS = ("QQMARKERALPHAQQ", "QQMARKERBETAQQ", "QQCODEAQQ", "QQCODEBQQ")

BLINDED_ROLES = {
    "bea_blinded_pi": (Role.INVESTIGATOR, True),
    "max_blinded_monitor": (Role.MONITOR, False),
    "dan_blinded_dm": (Role.DATA_MANAGER, False),
    "sue_blinded_stat": (Role.STATISTICIAN, False),
    "ada_blinded_sponsor": (Role.SPONSOR_ADMIN, False),
}


@pytest.fixture
def blinded_world(world):
    arms = list(Arm.objects.filter(study=world.s2).order_by("code"))
    for arm, name, code in zip(arms, MARKERS[:2], MARKERS[2:], strict=True):
        arm.name, arm.code, arm.description = name, code, f"{name} description"
        arm.save()
    Allocation.objects.create(
        patient=world.patient_c,
        arm=arms[0],
        part="randomised",
        stratum="01",
        allocated_by=world.user("pete_planner"),
    )
    users = {}
    for name, (role, at_site) in BLINDED_ROLES.items():
        user = UserFactory(username=name, is_staff=not at_site)
        MembershipFactory(
            user=user,
            study=world.s2,
            role=role,
            blinded=True,
            study_site=world.site_c if at_site else None,
        )
        users[name] = user
    return world, users


def _pages(world):
    targets = targets_at(world.s2, world.site_c, world.patient_c)
    for route in walk():
        url = _url_for(route, world, targets) if route.params else route.build({})
        if url is not None and "logout" not in url:
            yield url


@pytest.mark.django_db
@pytest.mark.parametrize("user_name", sorted(BLINDED_ROLES))
def test_no_page_shows_an_arm_to_a_blinded_user(blinded_world, login, user_name):
    world, users = blinded_world
    client = login(users[user_name])
    rendered = 0
    for url in _pages(world):
        response = client.get(url)
        if response.status_code != 200:
            continue
        body = response.content.decode(errors="replace")
        leaked = [m for m in MARKERS if m in body]
        assert not leaked, f"{user_name} sees {leaked} on {url}"
        rendered += 1
    assert rendered >= 8  # home, study, site, patient list and page, admin pages...


@pytest.mark.django_db
def test_an_unblinded_user_does_see_the_arm(blinded_world, login):
    world, _users = blinded_world
    client = login(world.user("pete_planner"))
    page = client.get(reverse("patient_detail", kwargs={"patient_pk": world.patient_c.pk}))
    assert MARKERS[0] in page.content.decode()


@pytest.mark.django_db
def test_a_blinded_user_sees_that_the_patient_is_randomised_but_not_the_arm(blinded_world, login):
    world, users = blinded_world
    page = (
        login(users["bea_blinded_pi"])
        .get(reverse("patient_detail", kwargs={"patient_pk": world.patient_c.pk}))
        .content.decode()
    )
    assert "Blinded" in page
