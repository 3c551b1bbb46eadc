"""URL map: the login page is the only page anonymous users reach."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from studies.forms_auth import LoginForm
from studies.preferences import set_language_and_remember

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(success_url="/accounts/password/done/"),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("i18n/setlang/", set_language_and_remember, name="set_language"),
    path("admin/", admin.site.urls),
    path("", include("patients.urls")),
    path("", include("lesions.urls")),
    path("", include("treatments.urls")),
    path("", include("studies.urls")),
]

handler403 = "studies.errors.permission_denied"
handler404 = "studies.errors.page_not_found"
