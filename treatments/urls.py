from django.urls import path

from treatments import views, views_drug, views_lines, views_timeline

urlpatterns = [
    path("patients/<int:patient_pk>/sbrt/", views.patient_courses, name="patient_courses"),
    path("patients/<int:patient_pk>/sbrt/new/", views.course_edit, name="course_new"),
    path("patients/<int:patient_pk>/sbrt/<int:course_pk>/", views.course_edit, name="course_edit"),
    path("patients/<int:patient_pk>/lines/", views_lines.patient_lines, name="patient_lines"),
    path("patients/<int:patient_pk>/lines/new/", views_lines.line_edit, name="line_new"),
    path("patients/<int:patient_pk>/lines/<int:line_pk>/", views_lines.line_edit, name="line_edit"),
    path("patients/<int:patient_pk>/study-drug/", views_drug.patient_drug, name="patient_drug"),
    path("patients/<int:patient_pk>/study-drug/new/", views_drug.cycle_edit, name="cycle_new"),
    path(
        "patients/<int:patient_pk>/study-drug/<int:cycle_pk>/",
        views_drug.cycle_edit,
        name="cycle_edit",
    ),
    path(
        "patients/<int:patient_pk>/timeline/",
        views_timeline.patient_timeline,
        name="patient_timeline",
    ),
    path("studies/<int:study_pk>/swimmer/", views_timeline.study_swimmer, name="study_swimmer"),
]
