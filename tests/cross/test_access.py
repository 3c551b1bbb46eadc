"""Site isolation and anonymous access, for every URL pattern of the project.

The patterns are enumerated from the URL configuration, so a new page is tested as soon as it
exists; a new kind of object id fails `test_every_object_id_kind_is_known` until it is mapped.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal as D

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.views.generic import RedirectView

from lesions.models import ImagingAssessment, Lesion, Measurement
from patients.ctcae_terms import ensure_terms
from patients.models import (
    AdverseEvent,
    CtcaeTerm,
    LabResult,
    NormalRange,
    Patient,
    SaeReport,
    SafetyRules,
)
from patients.models_dm import DataLock, DataQuery, Signature, SourceVerification
from patients.models_visits import PlannedVisit
from studies.models import (
    Arm,
    EligibilityCriterion,
    ExportJob,
    Membership,
    RandomisationList,
    ReportDelivery,
    ReportJob,
    ReportSchedule,
    Site,
    StratificationFactor,
    Study,
    StudySite,
    VisitDefinition,
)
from studies.services import randomisation_list_generate
from tests.conftest import ROLE_USERS
from tests.cross.urlwalk import walk
from treatments.models import (
    Agent,
    ArmPrescription,
    DrugCycle,
    DrugRegimen,
    RadiotherapyCourse,
    SbrtConstraint,
    SystemicLine,
)

# Kwargs that name trial objects in our own URLs, and which world object of "elsewhere" to use.
OWN_ID_KWARGS = {
    "study_pk": "study",
    "site_pk": "study_site",
    "patient_pk": "patient",
    "scan_pk": "scan",
    "course_pk": "course",
    "line_pk": "line",
    "cycle_pk": "cycle",
    "ae_pk": "ae",
    "lab_pk": "lab",
    "visit_pk": "visit",
    "job_pk": "job",
    "export_pk": "export",
    "lock_pk": "lock",
    "query_pk": "query",
}
# Kwargs of the admin that are not object ids.
ADMIN_NON_OBJECT_KWARGS = {"app_label", "url"}
# Kwargs of admin views that name an object of the model in their path (admin/<app>/<model>/).
ADMIN_OBJECT_KWARGS = {"object_id", "id", "pk"}
_ADMIN_MODEL_PATH = re.compile(r"^admin/(\w+)/(\w+)/")
ANONYMOUS_ALLOWED = {"login", "set_language", "admin:login"}


def _elsewhere(world, user_name: str) -> dict[str, object]:
    """Objects the user must not reach: another site of their study, or another study."""
    study_attr, site_attr, _role, _blinded = ROLE_USERS[user_name]
    if site_attr == "site_a":
        # A site user of S1 site A: site B is "another site" of the same study.
        return targets_at(world.s2, world.site_b, world.patient_b)
    if site_attr == "site_b":
        return targets_at(world.s2, world.site_a, world.patient_a)
    if study_attr == "s1":
        return targets_at(world.s2, world.site_c, world.patient_c)
    return targets_at(world.s1, world.site_a, world.patient_a)


def targets_at(study, study_site, patient) -> dict[str, object]:
    """The objects URL ids are filled with: a study, a site, a patient and the patient's scan."""
    scan = ImagingAssessment.objects.filter(patient=patient).first()
    if scan is None:
        scan = ImagingAssessment.objects.create(
            patient=patient, scan_date=datetime.date(2026, 1, 5), modality="CT"
        )
    if not Measurement.objects.filter(assessment__patient=patient).exists():
        lesion = Lesion.objects.create(patient=patient, label="T1", organ="lung", category="target")
        Measurement.objects.create(assessment=scan, lesion=lesion, diameter_mm=D("21"))
    course = RadiotherapyCourse.objects.filter(patient=patient).first()
    if course is None:
        course = RadiotherapyCourse.objects.create(
            patient=patient, technique="truebeam", planned_start=datetime.date(2026, 1, 12)
        )
    line = SystemicLine.objects.filter(patient=patient).first()
    if line is None:
        line = SystemicLine.objects.create(
            patient=patient, line_number=1, start=datetime.date(2025, 6, 1)
        )
        line.line_agents.create(
            agent=Agent.objects.get_or_create(name="sunitinib", drug_class="tki")[0]
        )
    regimen = DrugRegimen.objects.filter(study=study).first()
    if regimen is None:
        regimen = DrugRegimen.objects.create(
            study=study,
            agent=Agent.objects.get_or_create(name="atezolizumab", drug_class="anti_pdl1")[0],
            dose=1200,
            dose_basis="flat",
            route="iv",
            cycle_length_days=21,
            max_cycles=6,
        )
    cycle = DrugCycle.objects.filter(patient=patient).first()
    if cycle is None:
        cycle = DrugCycle.objects.create(
            patient=patient,
            regimen=regimen,
            number=1,
            planned_on=datetime.date(2026, 1, 12),
            planned_daily_mg=1200,
            planned_total_mg=1200,
            given_total_mg=1200,
            status="given",
        )
    ae = AdverseEvent.objects.filter(patient=patient).first()
    if ae is None:
        ensure_terms()
        ae = AdverseEvent.objects.create(
            patient=patient,
            term=CtcaeTerm.objects.get(term="Fatigue"),
            grade=3,
            onset_on=datetime.date(2026, 1, 20),
            attribution_sbrt="possible",
            attribution_systemic="unlikely",
            serious=True,
            sae_hospitalisation=True,
            outcome="recovering",
        )
        SaeReport.objects.create(
            adverse_event=ae, kind="initial", reported_on=datetime.date(2026, 1, 21), narrative="x"
        )
    lab = LabResult.objects.filter(patient=patient).first()
    if lab is None:
        lab = LabResult.objects.create(
            patient=patient,
            sampled_on=datetime.date(2026, 1, 20),
            analyte="lymphocytes",
            value=450,
            unit="/mm3",
            value_standard=D("0.45"),
            standard_unit="10^9/L",
            grade=3,
        )
    NormalRange.objects.get_or_create(
        study_site=study_site, analyte="lymphocytes", defaults={"lln": 1000, "unit": "/mm3"}
    )
    SafetyRules.objects.get_or_create(study=study)
    definition, _ = VisitDefinition.objects.get_or_create(
        study=study,
        code="ct",
        defaults={"name": "CT", "kind": "imaging", "anchor": "enrolment", "offset_days": 56},
    )
    visit, _ = PlannedVisit.objects.get_or_create(
        patient=patient,
        definition=definition,
        occurrence=1,
        defaults={
            "due_on": datetime.date(2026, 3, 1),
            "window_start": datetime.date(2026, 2, 22),
            "window_end": datetime.date(2026, 3, 8),
        },
    )
    schedule, _ = ReportSchedule.objects.get_or_create(
        study=study, defaults={"frequency": "weekly", "weekday": 0}
    )
    owner, _ = get_user_model().objects.get_or_create(
        username="report-owner", defaults={"email": "owner@example.org"}
    )
    ReportDelivery.objects.get_or_create(
        schedule=schedule,
        period="2026-W01",
        kind="site",
        study_site=study_site,
        recipient=owner,
        defaults={"email": "owner@example.org"},
    )
    job = ReportJob.objects.filter(study=study, study_site=study_site).first()
    if job is None:
        job = ReportJob.objects.create(
            requested_by=owner, study=study, study_site=study_site, state="done", pdf=b"%PDF-"
        )
    dm = _data_management_targets(study, patient, lab, owner)
    return {
        **dm,
        "visit": visit,
        "job": job,
        "study": study,
        "study_site": study_site,
        "patient": patient,
        "ae": ae,
        "lab": lab,
        "scan": scan,
        "course": course,
        "line": line,
        "regimen": regimen,
        "cycle": cycle,
    }


def _data_management_targets(study, patient, lab, owner) -> dict[str, object]:
    """An export, a released lock, a query, a signature and a verification for ``patient``."""
    export = ExportJob.objects.filter(study=study).first()
    if export is None:
        export = ExportJob.objects.create(requested_by=owner, study=study, format="csv")
    # A released lock: its URL can be walked without freezing the patient's data.
    lock = DataLock.objects.filter(patient=patient).first()
    if lock is None:
        lock = DataLock.objects.create(
            study=study,
            level="patient",
            patient=patient,
            reason="walk",
            locked_by=owner,
            locked_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            released_at=datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC),
            released_by=owner,
            release_reason="walk",
        )
    query = DataQuery.objects.filter(patient=patient).first()
    if query is None:
        query = DataQuery.objects.create(
            patient=patient,
            form_kind="lab",
            object_id=lab.pk,
            opened_at=datetime.datetime(2026, 1, 3, tzinfo=datetime.UTC),
        )
    signature = Signature.objects.filter(patient=patient).first()
    if signature is None:
        signature = Signature.objects.create(
            patient=patient,
            signer=owner,
            printed_name="Report Owner",
            signed_at=datetime.datetime(2026, 1, 4, tzinfo=datetime.UTC),
            meaning="I confirm the data are accurate and complete.",
            scope="forms",
            forms=[["lab", lab.pk, "0"]],
            content_hash="0",
        )
    verification, _ = SourceVerification.objects.get_or_create(
        form_kind="lab",
        object_id=lab.pk,
        defaults={
            "patient": patient,
            "content_hash": "0",
            "verified_by": owner,
            "verified_at": datetime.datetime(2026, 1, 4, tzinfo=datetime.UTC),
        },
    )
    return {
        "signature": signature,
        "verification": verification,
        "export": export,
        "lock": lock,
        "query": query,
    }


# Models of the admin that hold no site's data: any row will do.
NOT_TRIAL_DATA = {
    "user",
    "group",
    "totpdevice",
    "accessattempt",
    "accesslog",
    "accessfailurelog",
    "outboxemail",
}
# Reference lists shared by every study and readable by all staff (not any site's data).
SHARED_REFERENCE = {"agent", "ctcaeterm"}


def _trial_objects(targets) -> dict:
    study_site, study = targets["study_site"], targets["study"]
    return {
        Study: study,
        StudySite: study_site,
        Site: study_site.site,
        Arm: Arm.objects.filter(study=study).first(),
        Membership: Membership.objects.filter(study=study).first(),
        Patient: targets["patient"],
        EligibilityCriterion: EligibilityCriterion.objects.filter(study=study).first(),
        StratificationFactor: StratificationFactor.objects.filter(study=study).first(),
        RandomisationList: RandomisationList.objects.filter(study=study).first(),
        ImagingAssessment: targets["scan"],
        SbrtConstraint: SbrtConstraint.objects.filter(study=study).first(),
        ArmPrescription: ArmPrescription.objects.filter(arm__study=study).first(),
        Lesion: Lesion.objects.filter(patient=targets["patient"]).first(),
        Measurement: Measurement.objects.filter(assessment__patient=targets["patient"]).first(),
        SystemicLine: targets["line"],
        DrugRegimen: targets["regimen"],
        DrugCycle: targets["cycle"],
        AdverseEvent: targets["ae"],
        SaeReport: SaeReport.objects.filter(adverse_event=targets["ae"]).first(),
        LabResult: targets["lab"],
        NormalRange: NormalRange.objects.filter(study_site=study_site).first(),
        SafetyRules: SafetyRules.objects.filter(study=study).first(),
        VisitDefinition: VisitDefinition.objects.filter(study=study).first(),
        PlannedVisit: targets["visit"],
        ReportSchedule: ReportSchedule.objects.filter(study=study).first(),
        ReportDelivery: ReportDelivery.objects.filter(schedule__study=study).first(),
        ReportJob: targets["job"],
        ExportJob: targets["export"],
        DataLock: targets["lock"],
        DataQuery: targets["query"],
        Signature: targets["signature"],
        SourceVerification: targets["verification"],
    }


def _admin_object(model, targets) -> object | None:
    """An instance of ``model`` that belongs to the target study-site (or its study)."""
    if model._meta.model_name in SHARED_REFERENCE or (
        getattr(model, "pgh_tracked_model", None) is not None
        and model.pgh_tracked_model._meta.model_name in SHARED_REFERENCE
    ):
        return None
    by_model = _trial_objects(targets)
    if model in by_model:
        return by_model[model]
    tracked = getattr(model, "pgh_tracked_model", None)
    if tracked is not None and tracked in by_model:
        return model.objects.filter(pgh_obj_id=by_model[tracked].pk).first()
    if model._meta.model_name in NOT_TRIAL_DATA:
        return model.objects.first()
    raise AssertionError(f"map {model.__name__} in _trial_objects or NOT_TRIAL_DATA")


def _admin_model(route, admin):
    if admin is not None:
        return admin.model
    match = _ADMIN_MODEL_PATH.match(route.template)
    if match is None:
        return None
    try:
        return apps.get_model(match.group(1), match.group(2))
    except LookupError:
        return None


def _url_for(route, world, targets) -> str | None:
    values: dict[str, object] = {}
    admin = route.model_admin
    for param in route.params:
        if param in OWN_ID_KWARGS:
            values[param] = targets[OWN_ID_KWARGS[param]].pk
        elif param == "app_label":
            values[param] = "studies"
        elif param == "url":
            values[param] = "no-such-page/"
        elif param in ADMIN_OBJECT_KWARGS and _admin_model(route, admin) is not None:
            obj = _admin_object(_admin_model(route, admin), targets)
            if obj is None:
                return None
            values[param] = obj.pk
        elif param in {"content_type_id", "object_id"}:
            values["content_type_id"] = ContentType.objects.get_for_model(StudySite).pk
            values["object_id"] = targets["study_site"].pk
        else:
            return None
    return route.build(values)


def _is_redirect_alias(route) -> bool:
    """The admin's legacy "<id>/" route only redirects to "<id>/change/", tested itself."""
    return getattr(route.callback, "view_class", None) is RedirectView


def _routes_with_ids():
    return [
        r for r in walk() if set(r.params) - ADMIN_NON_OBJECT_KWARGS and not _is_redirect_alias(r)
    ]


def _event_count() -> int:
    """Audit rows of every audited table: a refused request must write none, anywhere."""
    import pghistory.models
    from django.apps import apps as registry

    return sum(
        m.objects.count()
        for m in registry.get_models()
        if issubclass(m, pghistory.models.Event) and getattr(m, "pgh_tracked_model", None)
    )


def _protocol_data(world) -> None:
    """Criteria, factors and lists in both studies, so that their admin pages are probed too."""
    for study in (world.s1, world.s2):
        EligibilityCriterion.objects.create(study=study, kind="inclusion", number=1, text="Adult")
        StratificationFactor.objects.create(study=study, name="ecog", label="ECOG", levels="0,1")
        randomisation_list_generate(study=study, by=world.user("sam_sponsor"), slots_per_stratum=4)
        SbrtConstraint.objects.create(study=study, max_overall_days=21)
        ArmPrescription.objects.create(arm=study.arms.first(), total_dose_gy=8, fractions=1)


def test_every_object_id_kind_is_known():
    known = set(OWN_ID_KWARGS) | ADMIN_NON_OBJECT_KWARGS | ADMIN_OBJECT_KWARGS | {"content_type_id"}
    unknown = {(r.template, p) for r in walk() for p in r.params if p not in known}
    assert not unknown, f"map these URL kwargs in OWN_ID_KWARGS: {sorted(unknown)}"


def test_the_walk_finds_our_pages_and_the_admin():
    names = {r.name for r in walk()}
    assert {
        "study_detail",
        "study_site_detail",
        "study_site_edit",
        "patient_history",
        "admin:studies_studysite_change",
    } <= names


@pytest.mark.parametrize("user_name", sorted(ROLE_USERS))
def test_no_role_reaches_an_object_of_another_site(world, login, user_name):
    # Objects that belong to nobody's site: another user's authenticator, a lockout record.
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=world.user("una_unblinded_stat"), name="other", confirmed=True)
    _protocol_data(world)
    client = login(world.user(user_name))
    targets = _elsewhere(world, user_name)
    before = _event_count()
    checked = 0
    for route in _routes_with_ids():
        url = _url_for(route, world, targets)
        if url is None:
            continue
        for method in ("get", "post"):
            data = {"reason": "probe", "post": "yes", "recruitment_status": "SUSPENDED"}
            response = getattr(client, method)(url, data) if method == "post" else client.get(url)
            assert response.status_code in (403, 404, 405), (
                f"{user_name} {method.upper()} {url} -> {response.status_code}"
            )
            checked += 1
    assert checked > 20
    assert _event_count() == before, "a refused request wrote something"


def test_a_site_user_does_see_their_own_objects(world, login):
    client = login(world.user("alice_pi"))
    for url in (
        reverse("study_detail", kwargs={"study_pk": world.s1.pk}),
        reverse("study_site_detail", kwargs={"site_pk": world.site_a.pk}),
    ):
        assert client.get(url).status_code == 200


def test_a_sponsor_role_sees_every_site_of_its_study_only(world, login):
    client = login(world.user("carl_monitor"))
    assert (
        client.get(reverse("study_site_detail", kwargs={"site_pk": world.site_b.pk})).status_code
        == 200
    )
    assert (
        client.get(reverse("study_site_detail", kwargs={"site_pk": world.site_c.pk})).status_code
        == 404
    )


def test_anonymous_users_reach_nothing_but_the_login_page(world, client):
    login_urls = (reverse("login"), reverse("admin:login"))
    targets = targets_at(world.s1, world.site_a, world.patient_a)
    checked = 0
    for route in walk():
        if route.name in ANONYMOUS_ALLOWED:
            continue
        url = _url_for(route, world, targets) if route.params else route.build({})
        if url is None:
            continue
        response = client.get(url)
        assert response.status_code == 302, f"{url} -> {response.status_code}"
        assert response["Location"].split("?")[0] in login_urls, f"{url} -> {response['Location']}"
        checked += 1
    assert checked > 30
    assert client.get(reverse("login")).status_code == 200
