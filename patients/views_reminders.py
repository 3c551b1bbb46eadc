"""The logged-in user's own visit reminders (the outbox rows addressed to them)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from patients.reminders import KEY_PREFIX
from studies.models import OutboxEmail


@require_GET
def my_reminders(request: HttpRequest) -> HttpResponse:
    """Reminders emailed to the user, newest first: two queries whatever their number."""
    email = request.user.email
    reminders = OutboxEmail.objects.none()
    if email:
        reminders = (
            OutboxEmail.objects.filter(key__startswith=KEY_PREFIX, to__contains=[email])
            .only("subject", "body", "created_at", "sent_at")
            .order_by("-created_at", "-pk")
        )
    page = Paginator(reminders, 50).get_page(request.GET.get("page"))
    return render(request, "patients/my_reminders.html", {"page": page, "email": email})
