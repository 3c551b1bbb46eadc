"""Session idle expiry without a database write on every request.

Django's ``SESSION_SAVE_EVERY_REQUEST`` pushes a session's expiry back by rewriting the session
row on every request: one UPDATE (and a transaction) per page view, on every page. This
middleware refreshes the expiry at most once per ``SESSION_REFRESH_SECONDS`` (60 s by default)
instead, by touching a timestamp in the session, which makes Django's ``SessionMiddleware`` save
it. A session therefore expires between ``SESSION_COOKIE_AGE - SESSION_REFRESH_SECONDS`` and
``SESSION_COOKIE_AGE`` after the user's last request (29 to 30 minutes by default).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse

TOUCHED_KEY = "_oligocrf_touched"


class SessionRefreshMiddleware:
    """Place right after ``SessionMiddleware``: its response pass runs before the save."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or session.is_empty():
            return response  # no session (an anonymous visitor, or just logged out)
        touched = session.get(TOUCHED_KEY)  # loads the session if the view did not
        if session.is_empty():
            return response  # the cookie named a session that has expired
        now = int(time.time())
        interval = getattr(settings, "SESSION_REFRESH_SECONDS", 60)
        if session.modified or not isinstance(touched, int) or now - touched >= interval:
            session[TOUCHED_KEY] = now  # SessionMiddleware saves it, with a new expiry
        return response
