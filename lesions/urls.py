from django.urls import path

from lesions import views

urlpatterns = [
    path("patients/<int:patient_pk>/lesions/", views.patient_lesions, name="patient_lesions"),
    path("patients/<int:patient_pk>/lesions/baseline/", views.baseline_new, name="baseline_new"),
    path(
        "patients/<int:patient_pk>/lesions/baseline/edit/",
        views.baseline_edit,
        name="baseline_edit",
    ),
    path("patients/<int:patient_pk>/scans/new/", views.scan_edit, name="scan_new"),
    path("patients/<int:patient_pk>/scans/<int:scan_pk>/", views.scan_edit, name="scan_edit"),
    path("studies/<int:study_pk>/response/", views.study_response, name="study_response"),
]
