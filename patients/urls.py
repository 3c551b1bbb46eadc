from django.urls import path

from patients import views

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
]
