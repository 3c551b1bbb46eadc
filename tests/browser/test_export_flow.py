"""A data manager asks for a CSV export on the study's page; a real Celery worker writes it while
the job page polls its progress (static/js/job_progress.js) and offers the download when done."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from studies.exports import writer
from studies.models import ExportJob
from tests.browser.test_lesions_flow import _log_in
from tests.studies.test_exports import trial  # noqa: F401 - fixture

pytestmark = pytest.mark.browser


def test_the_export_page_follows_the_worker_and_offers_the_download(
    page,
    live_server,
    trial,  # noqa: F811 - fixture
    celery_worker,
    settings,
    tmp_path,
    monkeypatch,
):
    settings.EXPORT_DIR = tmp_path / "exports"
    monkeypatch.setattr(writer, "REPORT_EVERY_SECONDS", 0)
    _log_in(page, live_server, "dora_datamanager")
    page.goto(f"{live_server.url}/studies/{trial.s1.pk}/")
    page.get_by_role("link", name="Data exports").click()
    page.check("input[name=format][value=csv]")
    page.get_by_role("button", name="Export").click()
    # No reload by hand: the page polls until the worker has written the file.
    expect(page.get_by_test_id("download")).to_be_visible(timeout=60_000)
    job = ExportJob.objects.get()
    assert (job.state, job.progress) == ("done", 100)
    with page.expect_download() as download:
        page.get_by_test_id("download").click()
    assert download.value.suggested_filename.endswith(".zip")
