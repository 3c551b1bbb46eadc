"""Logging in through a real browser: the home page, the language switch, a wrong password."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

LOGIN_PATH = re.compile(r"/accounts/login/")


def _log_in(page, live_server, username: str, password: str) -> None:
    page.goto(live_server.url + "/")
    expect(page).to_have_url(LOGIN_PATH)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]:has-text('Log in')")


def test_investigator_logs_in_sees_home_and_switches_to_french(page, live_server, world):
    _log_in(page, live_server, "alice_pi", PASSWORD)

    expect(page).to_have_url(live_server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("My studies")
    expect(page.get_by_text("S1-TRIAL", exact=True)).to_be_visible()
    expect(page.get_by_text("Alpha Institute")).to_be_visible()
    expect(page.get_by_text("Beta Hospital")).to_have_count(0)
    expect(page.get_by_text("S2-BLIND")).to_have_count(0)
    # Bootstrap is loaded: the navbar has its primary background, not the default transparent one.
    navbar = page.locator("nav.navbar")
    expect(navbar).to_have_css("background-color", re.compile(r"rgb\(13, 110, 253"))

    with page.expect_navigation():
        page.select_option("#language-select", "fr")

    expect(page).to_have_url(live_server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#language-select")).to_have_value("fr")
    # Needs the project's French catalogue (locale/fr/LC_MESSAGES/django.mo).
    heading = page.locator("h1")
    expect(heading, "home heading still in English after switching to French").not_to_have_text(
        "My studies"
    )
    expect(heading).to_have_text("Mes études")


def test_wrong_password_shows_an_error_and_stays_on_login(page, live_server, world):
    _log_in(page, live_server, "alice_pi", "not-the-password")

    expect(page).to_have_url(LOGIN_PATH)
    expect(page.locator("input[name=password]")).to_be_visible()
    expect(page.locator(".alert-danger")).to_contain_text(
        "Please enter a correct username and password"
    )
    expect(page.get_by_test_id("current-user")).to_have_count(0)
