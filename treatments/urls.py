from django.urls import path

from treatments import views

urlpatterns = [
    path("patients/<int:patient_pk>/sbrt/", views.patient_courses, name="patient_courses"),
    path("patients/<int:patient_pk>/sbrt/new/", views.course_edit, name="course_new"),
    path("patients/<int:patient_pk>/sbrt/<int:course_pk>/", views.course_edit, name="course_edit"),
]
