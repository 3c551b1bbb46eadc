from django.urls import path

from patients import (
    views,
    views_ae,
    views_dm,
    views_labs,
    views_queries,
    views_reminders,
    views_visits,
)

urlpatterns = [
    path("sites/<int:site_pk>/patients/", views.patient_list, name="patient_list"),
    path("sites/<int:site_pk>/screen/", views.patient_screen, name="patient_screen"),
    path("patients/<int:patient_pk>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:patient_pk>/eligibility-data/", views.patient_facts, name="patient_facts"),
    path(
        "patients/<int:patient_pk>/eligibility/",
        views.patient_eligibility,
        name="patient_eligibility",
    ),
    path("patients/<int:patient_pk>/consent/", views.patient_consent, name="patient_consent"),
    path(
        "patients/<int:patient_pk>/consent/withdraw/",
        views.consent_withdraw,
        name="consent_withdraw",
    ),
    path("patients/<int:patient_pk>/enrol/", views.patient_enrol, name="patient_enrol"),
    path("patients/<int:patient_pk>/status/", views.patient_status, name="patient_status"),
    path("patients/<int:patient_pk>/decline/", views.patient_decline, name="patient_decline"),
    path("patients/<int:patient_pk>/unblind/", views.patient_unblind, name="patient_unblind"),
    path("patients/<int:patient_pk>/adverse-events/", views_ae.patient_aes, name="patient_aes"),
    path("patients/<int:patient_pk>/adverse-events/new/", views_ae.ae_edit, name="ae_new"),
    path("patients/<int:patient_pk>/adverse-events/<int:ae_pk>/", views_ae.ae_edit, name="ae_edit"),
    path(
        "patients/<int:patient_pk>/adverse-events/<int:ae_pk>/sae-report/",
        views_ae.sae_report_new,
        name="sae_report_new",
    ),
    path("ctcae/terms/", views_ae.term_search, name="ctcae_term_search"),
    path("studies/<int:study_pk>/safety/", views_ae.study_safety, name="study_safety"),
    path("patients/<int:patient_pk>/labs/", views_labs.patient_labs, name="patient_labs"),
    path("patients/<int:patient_pk>/labs/new/", views_labs.lab_new, name="lab_new"),
    path("patients/<int:patient_pk>/labs/<int:lab_pk>/", views_labs.lab_edit, name="lab_edit"),
    path("sites/<int:site_pk>/normal-ranges/", views_labs.normal_ranges, name="normal_ranges"),
    path(
        "studies/<int:study_pk>/lymphopenia/",
        views_labs.study_lymphopenia,
        name="study_lymphopenia",
    ),
    path("sites/<int:site_pk>/visits/", views_visits.site_visits, name="site_visits"),
    path("patients/<int:patient_pk>/visits/", views_visits.patient_visits, name="patient_visits"),
    path(
        "patients/<int:patient_pk>/visits/<int:visit_pk>/",
        views_visits.visit_edit,
        name="visit_edit",
    ),
    path("reminders/", views_reminders.my_reminders, name="my_reminders"),
    # Data management: casebook (form status matrix), SDV, signatures, locks.
    path("patients/<int:patient_pk>/casebook/", views_dm.casebook, name="casebook"),
    path("patients/<int:patient_pk>/casebook/verify/", views_dm.verify, name="casebook_verify"),
    path("patients/<int:patient_pk>/casebook/sign/", views_dm.sign, name="casebook_sign"),
    path("patients/<int:patient_pk>/casebook/lock/", views_dm.lock_patient, name="casebook_lock"),
    path("sites/<int:site_pk>/forms/", views_dm.site_forms, name="site_forms"),
    path("sites/<int:site_pk>/lock/", views_dm.lock_site, name="site_lock"),
    path("studies/<int:study_pk>/locks/", views_dm.study_locks, name="study_locks"),
    path("locks/<int:lock_pk>/unlock/", views_dm.unlock, name="unlock"),
    # Queries.
    path(
        "patients/<int:patient_pk>/queries/", views_queries.patient_queries, name="patient_queries"
    ),
    path("patients/<int:patient_pk>/queries/new/", views_queries.query_new, name="query_new"),
    path("queries/<int:query_pk>/", views_queries.query_detail, name="query_detail"),
    path("sites/<int:site_pk>/queries/", views_queries.site_queries, name="site_queries"),
]
