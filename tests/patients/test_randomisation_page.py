"""The statistician's randomisation page: generate from a seed, or upload a prepared list."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from patients import services
from studies.models import AllocationSlot, RandomisationList
from studies.roles import Role
from tests.factories import MembershipFactory, UserFactory
from tests.patients.conftest import make_ready, screen, today

pytestmark = pytest.mark.django_db


def _statistician(study, blinded=False):
    user = UserFactory(username=f"stat_{'b' if blinded else 'u'}")
    MembershipFactory(user=user, study=study, role=Role.STATISTICIAN, blinded=blinded)
    return user


def _csv(rows: list[tuple[str, str, str]]) -> SimpleUploadedFile:
    text = "stratum,sequence,arm\n" + "\n".join(",".join(r) for r in rows) + "\n"
    return SimpleUploadedFile("list.csv", text.encode(), content_type="text/csv")


def test_the_statistician_generates_a_list_and_sees_only_fill_levels(seeds, client):
    sarc = seeds["STEREOSARC"]
    client.force_login(_statistician(sarc))
    url = reverse("study_randomisation", kwargs={"study_pk": sarc.pk})
    response = client.post(
        url,
        {"action": "generate", "seed": "", "block_multipliers": "1,2", "slots_per_stratum": "20"},
    )
    assert response.status_code == 302
    rlist = RandomisationList.objects.get(study=sarc)
    assert len(rlist.seed) == 32  # a random seed was recorded
    page = client.get(url).content.decode()
    assert rlist.seed not in page
    assert "SBRT + Atezolizumab" not in page  # no arm shown, the list is concealed


def test_a_blinded_statistician_cannot_generate_the_list_of_a_blinded_study(seeds, client):
    stop2 = seeds["STOP-2"]
    client.force_login(_statistician(stop2, blinded=True))
    url = reverse("study_randomisation", kwargs={"study_pk": stop2.pk})
    response = client.post(
        url, {"action": "generate", "block_multipliers": "1,2", "slots_per_stratum": "20"}
    )
    assert response.status_code == 403
    assert not RandomisationList.objects.exists()


def test_site_staff_do_not_see_the_randomisation_page(seeds, investigator, client):
    client.force_login(investigator)
    url = reverse("study_randomisation", kwargs={"study_pk": seeds["STEREOSARC"].pk})
    assert client.get(url).status_code == 403


def test_an_uploaded_list_is_used_in_order(seeds, investigator, client):
    sarc = seeds["STEREOSARC"]
    strata = [ss.number for ss in sarc.study_sites.order_by("number")]
    rows = [(s, str(n), code) for s in strata for n, code in enumerate(["B", "A", "A", "B"], 1)]
    client.force_login(_statistician(sarc))
    url = reverse("study_randomisation", kwargs={"study_pk": sarc.pk})
    response = client.post(url, {"action": "upload", "file": _csv(rows)})
    assert response.status_code == 302
    assert AllocationSlot.objects.filter(rlist__uploaded=True).count() == len(rows)
    first = services.patient_enrol(patient=make_ready(sarc, investigator), by=investigator)
    assert first.arm.code == "B"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("01", "1", "Z")], "unknown arm"),
        ([("01", "2", "A")], "sequences must run"),
    ],
)
def test_a_bad_upload_is_refused_whole(seeds, client, rows, message):
    sarc = seeds["STEREOSARC"]
    client.force_login(_statistician(sarc))
    url = reverse("study_randomisation", kwargs={"study_pk": sarc.pk})
    response = client.post(url, {"action": "upload", "file": _csv(rows)})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not RandomisationList.objects.exists()


def test_a_first_consent_cannot_be_dated_after_the_randomisation(seeds, investigator):
    from datetime import timedelta

    import time_machine
    from django.core.exceptions import ValidationError

    from patients.models import Consent

    with time_machine.travel(today() - timedelta(days=10)):
        patient = make_ready(seeds["STORM-01"], investigator)
        services.patient_enrol(patient=patient, by=investigator)
    # The only consent is moved out of the way: a consent after the randomisation stands alone.
    Consent.objects.filter(patient=patient).update(withdrawn_on=None, consented_on=today())
    with pytest.raises(ValidationError, match="after the patient's randomisation"):
        services.consent_record(
            patient=patient,
            consented_on=today() - timedelta(days=1),
            form_version="v3",
            by=investigator,
        )


def test_a_re_consent_after_randomisation_is_accepted(seeds, investigator):
    from datetime import timedelta

    import time_machine

    with time_machine.travel(today() - timedelta(days=10)):
        patient = make_ready(seeds["STORM-01"], investigator)
        services.patient_enrol(patient=patient, by=investigator)
    services.consent_record(
        patient=patient, consented_on=today(), form_version="v4 (amendment)", by=investigator
    )
    assert patient.consents.count() == 2


def test_a_patient_who_declines_ends_the_screening_as_declined(seeds, investigator, client):
    patient = screen(seeds["STORM-01"], investigator)
    client.force_login(investigator)
    url = reverse("patient_decline", kwargs={"patient_pk": patient.pk})
    assert "This field is required." in client.post(url, {"reason": ""}).content.decode()
    patient.refresh_from_db()
    assert patient.status == "screening"
    response = client.post(url, {"reason": "Prefers to stay near home"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.screening_outcome, patient.status) == ("declined", "screen_failure")
    flow = client.get(reverse("study_detail", kwargs={"study_pk": patient.study_site.study_id}))
    assert flow.context["consort"]["declined"] == 1
