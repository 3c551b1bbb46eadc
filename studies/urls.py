from django.urls import path

from studies import account_views, views, views_dashboard, views_exports, views_reports

urlpatterns = [
    path("", views.home, name="home"),
    path("sites/<int:site_pk>/report/", views_reports.site_report, name="site_report"),
    path("studies/<int:study_pk>/report/", views_reports.study_report, name="study_report"),
    path("reports/<int:job_pk>/", views_reports.job_status, name="report_job"),
    path("reports/<int:job_pk>/download/", views_reports.job_download, name="report_download"),
    path("studies/<int:study_pk>/", views.study_detail, name="study_detail"),
    path(
        "studies/<int:study_pk>/randomisation/",
        views.study_randomisation,
        name="study_randomisation",
    ),
    path("sites/<int:site_pk>/", views.study_site_detail, name="study_site_detail"),
    path("sites/<int:site_pk>/edit/", views.study_site_edit, name="study_site_edit"),
    path(
        "history/study/<int:study_pk>/",
        views.record_history,
        {"kind": "study"},
        name="study_history",
    ),
    path(
        "history/site/<int:site_pk>/",
        views.record_history,
        {"kind": "site"},
        name="study_site_history",
    ),
    path(
        "history/patient/<int:patient_pk>/",
        views.record_history,
        {"kind": "patient"},
        name="patient_history",
    ),
    path("account/two-factor/setup/", account_views.two_factor_setup, name="two_factor_setup"),
    path("account/two-factor/verify/", account_views.two_factor_verify, name="two_factor_verify"),
    path("studies/<int:study_pk>/exports/", views_exports.study_exports, name="study_exports"),
    path("exports/<int:export_pk>/", views_exports.export_status, name="export_status"),
    path(
        "exports/<int:export_pk>/download/", views_exports.export_download, name="export_download"
    ),
    path(
        "studies/<int:study_pk>/dashboard/", views_dashboard.study_dashboard, name="study_dashboard"
    ),
]
