"""Request middleware: two-factor enforcement."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from studies.security import requires_two_factor

_ALWAYS_ALLOWED = ("two_factor_setup", "two_factor_verify", "logout", "set_language")


class TwoFactorRequiredMiddleware:
    """Users whose role needs two-factor authentication reach nothing until they pass it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith(
                settings.STATIC_URL
                if settings.STATIC_URL.startswith("/")
                else "/" + settings.STATIC_URL
            )
            and request.path not in {reverse(name) for name in _ALWAYS_ALLOWED}
            and requires_two_factor(user)
        ):
            from django_otp import devices_for_user

            has_device = any(True for _ in devices_for_user(user, confirmed=True))
            target = "two_factor_verify" if has_device else "two_factor_setup"
            return redirect(f"{reverse(target)}?next={request.get_full_path()}")
        return self.get_response(request)
