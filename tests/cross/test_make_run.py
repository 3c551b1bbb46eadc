"""`make run` starts the web app, a Celery worker and beat; a user can log in; it stops cleanly."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from studies.demo import DEMO_PASSWORD

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, deadline: float, proc: subprocess.Popen, log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"make run exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer")


def _log_in(base: str, username: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"username": username, "password": DEMO_PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(
        base + "/accounts/login/", data=data, headers={"Referer": base + "/accounts/login/"}
    )
    return opener.open(request).read().decode()


def test_make_run_serves_the_app_with_worker_and_beat_and_stops_cleanly(tmp_path):
    port = _free_port()
    log = tmp_path / "make-run.log"
    env = {**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # make run uses the development settings
    env.pop("TEST_DATABASE_NAME", None)
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["make", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/accounts/login/", time.monotonic() + 240, proc, log)
        home = _log_in(f"http://127.0.0.1:{port}", "pi.caen")
        assert "GETUG-StORM-01" in home and "STEREOSARC" in home
        assert "Centre François Baclesse" in home
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log.read_text()
            if re.search(r"celery@\S+ ready", text) and "beat: Starting" in text:
                break
            time.sleep(0.5)
        text = log.read_text()
        assert re.search(r"celery@\S+ ready", text), text[-3000:]
        assert "beat: Starting" in text, text[-3000:]
        assert "pi.caen" in text  # the demo logins are printed
        time.sleep(2)
        text = log.read_text()
        assert proc.poll() is None and "stopped (rc=" not in text, text[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the web server is still listening"
