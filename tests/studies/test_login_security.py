"""Login security: lockout, idle expiry, two-factor, password rules, production settings."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _attempt(client, username, password, forwarded_for=None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def test_five_failed_logins_lock_the_account_even_with_forged_forwarded_for(world, client):
    for n in range(settings.AXES_FAILURE_LIMIT):
        response = _attempt(client, "alice_pi", "wrong password", forwarded_for=f"10.0.0.{n}")
    assert response.status_code == 429
    # The right password no longer opens the account, from any claimed address.
    response = _attempt(client, "alice_pi", PASSWORD, forwarded_for="192.168.1.77")
    assert response.status_code == 429
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_fewer_failures_than_the_limit_do_not_lock(world, client):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _attempt(client, "alice_pi", "wrong password").status_code == 200
    assert _attempt(client, "alice_pi", PASSWORD).status_code == 302


def test_a_wrong_password_gets_a_clear_error(world, client):
    response = _attempt(client, "alice_pi", "nope")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_the_session_expires_after_30_idle_minutes(world, client):
    assert _attempt(client, "alice_pi", PASSWORD).status_code == 302
    with time_machine.travel(timezone.now() + timedelta(minutes=29)):
        assert client.get(reverse("home")).status_code == 200  # activity pushes expiry back
    # Sessions are read from Redis first (cached_db), where they live for the idle age in real
    # time; Redis does not see the travelled clock, so let its copy lapse here by hand.
    from django.contrib.sessions.backends.cached_db import KEY_PREFIX
    from django.core.cache import cache

    redis_key = cache.make_and_validate_key(KEY_PREFIX + client.session.session_key)
    assert 0 < cache._cache.get_client(redis_key).ttl(redis_key) <= settings.SESSION_COOKIE_AGE
    cache.delete(KEY_PREFIX + client.session.session_key)
    with time_machine.travel(timezone.now() + timedelta(minutes=29 + 31)):
        response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_activity_refreshes_the_expiry_at_most_once_a_minute(world, client):
    """No session write on every page: the idle expiry is pushed back once a minute at most."""
    from django.contrib.sessions.models import Session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert _attempt(client, "alice_pi", PASSWORD).status_code == 302
    key = client.session.session_key
    first = Session.objects.get(pk=key).expire_date
    start = timezone.now()
    with (
        time_machine.travel(start + timedelta(seconds=20)),
        CaptureQueriesContext(connection) as queries,
    ):
        assert client.get(reverse("home")).status_code == 200
    assert not [q for q in queries if "django_session" in q["sql"]]
    assert Session.objects.get(pk=key).expire_date == first
    with time_machine.travel(start + timedelta(minutes=5)):
        assert client.get(reverse("home")).status_code == 200
    refreshed = Session.objects.get(pk=key).expire_date
    assert refreshed >= first + timedelta(minutes=4)
    # Logging out leaves no session behind, and a later visit does not make one.
    client.post(reverse("logout"))
    assert not Session.objects.filter(pk=key).exists()
    client.get(reverse("login"))
    assert Session.objects.count() == 0


def test_sponsor_admins_must_set_up_two_factor_first(world, client):
    client.force_login(world.user("sam_sponsor"))
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor_setup"))
    # Nor can they reach the admin panel.
    assert client.get(reverse("admin:index"))["Location"].startswith(reverse("two_factor_setup"))


def test_two_factor_setup_confirms_a_device_and_opens_the_app(world, client):
    client.force_login(world.user("pete_planner"))
    assert client.get(reverse("two_factor_setup")).status_code == 200
    device = TOTPDevice.objects.get(user=world.user("pete_planner"))
    bad = client.post(reverse("two_factor_setup"), {"token": "000000"})
    assert "This code is not valid" in bad.content.decode()
    # django-otp throttles a device after a failure (1 s, doubling): try again a bit later.
    with time_machine.travel(timezone.now() + timedelta(seconds=5)):
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
        response = client.post(reverse("two_factor_setup"), {"token": f"{code:06d}", "next": "/"})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("home")).status_code == 200


def test_two_factor_verify_at_next_login(world, client):
    user = world.user("una_unblinded_stat")  # unblinded in a double-blind study
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    assert client.get(reverse("home"))["Location"].startswith(reverse("two_factor_verify"))
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    assert client.post(reverse("two_factor_verify"), {"token": f"{code:06d}"}).status_code == 302
    assert client.get(reverse("home")).status_code == 200


def test_blinded_site_staff_do_not_need_two_factor(world, client):
    client.force_login(world.user("alice_pi"))
    assert client.get(reverse("home")).status_code == 200


def test_passwords_need_12_characters(world):
    with pytest.raises(ValidationError, match="at least 12 characters"):
        validate_password("Sh0rt-pass!")
    validate_password("a-long-enough-passphrase")


def test_production_hashes_with_argon2_and_passes_check_deploy(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "SECRET_KEY": "x" * 20 + "-production-secret-for-the-check-deploy-test-0123456789",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/unused",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "ALLOWED_HOSTS": "crf.example.org",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    hasher = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings;"
            " print(settings.PASSWORD_HASHERS[0], settings.SESSION_COOKIE_SECURE)",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=True,
    )
    assert hasher.stdout.split() == ["django.contrib.auth.hashers.Argon2PasswordHasher", "True"]


def test_production_settings_refuse_to_start_without_secrets():
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL"}}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.prod"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
