"""The user's own preferences: the language switcher also remembers the choice for emails."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils.translation import check_for_language
from django.views.i18n import LANGUAGE_QUERY_PARAMETER, set_language

from studies.models import UserPreference


@login_not_required
def set_language_and_remember(request: HttpRequest) -> HttpResponse:
    """Django's ``set_language`` (cookie and redirect); a logged-in user's choice is also saved
    in ``UserPreference``, the language of the emails they receive (visit reminders, reports)."""
    response = set_language(request)
    language = request.POST.get(LANGUAGE_QUERY_PARAMETER) if request.method == "POST" else None
    offered = {code for code, _name in settings.LANGUAGES}
    if language in offered and check_for_language(language) and request.user.is_authenticated:
        UserPreference.objects.update_or_create(user=request.user, defaults={"language": language})
    return response
