"""Exports written by a real Celery worker on Redis: asked for on the page, followed, downloaded;
run twice, written once; interrupted by a crash, redone from scratch and never offered half
written; two deliveries at once never write together."""

from __future__ import annotations

import io
import time
import zipfile
from xml.etree import ElementTree as ET

import pytest
from django.db import connection
from django.urls import reverse

from studies.export_tasks import LOCK_NAMESPACE, run_export
from studies.exports import export_path, writer
from studies.exports.writer import Progress, part_path
from studies.models import ExportJob
from tests.studies.test_exports import trial  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"  # the worker runs in this process: it sees it too
    return settings.EXPORT_DIR


def _wait_until(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _state(job_pk: int) -> str:
    return ExportJob.objects.get(pk=job_pk).state


def test_an_export_is_written_by_a_real_worker_and_downloaded_once_written(
    trial,  # noqa: F811 - fixture
    login,
    celery_worker,
    export_dir,
    monkeypatch,
):
    # Progress written on every row: updates interleave with the worker's open cursors.
    monkeypatch.setattr(writer, "REPORT_EVERY_SECONDS", 0)
    client = login(trial.user("dora_datamanager"))
    response = client.post(
        reverse("study_exports", kwargs={"study_pk": trial.s1.pk}), {"format": "csv"}
    )
    job = ExportJob.objects.get()
    assert response["Location"] == reverse("export_status", kwargs={"export_pk": job.pk})
    status_url = reverse("export_status", kwargs={"export_pk": job.pk})
    _wait_until(lambda: client.get(status_url, {"format": "json"}).json()["finished"])
    status = client.get(status_url, {"format": "json"}).json()
    assert (status["state"], status["progress"], status["download"]) == ("done", 100, True)
    assert status["rows"] > 10
    download = client.get(reverse("export_download", kwargs={"export_pk": job.pk}))
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert "S1-01-001" in archive.read("patients.csv").decode()
    assert "data_dictionary.csv" in archive.namelist()
    assert [p.name for p in export_dir.iterdir()] == [export_path(job).name]  # no part file
    # Delivered again (a redelivered message, a double click): nothing is written again.
    written = export_path(job).stat().st_mtime_ns
    assert run_export.delay(job.pk).get(timeout=30) == "gone"
    assert export_path(job).stat().st_mtime_ns == written


class WorkerCrash(BaseException):  # noqa: N818 - stands for the process being killed
    """Not an Exception: nothing in the task catches it, as nothing runs when a worker dies."""


def test_an_export_interrupted_by_a_crash_is_redone_from_scratch_and_never_offered_half_written(
    trial,  # noqa: F811 - fixture
    login,
    celery_worker,
    export_dir,
    monkeypatch,
):
    dora = trial.user("dora_datamanager")
    job = ExportJob.objects.create(
        requested_by=dora, study=trial.s1, format="odm", include_audit=True, blinded=False
    )
    add = Progress.add

    def dies_after_ten_rows(self, n=1):
        add(self, n)
        if self.rows >= 10:
            raise WorkerCrash

    monkeypatch.setattr(Progress, "add", dies_after_ten_rows)
    with pytest.raises(WorkerCrash):
        run_export(job.pk)  # the first delivery, in this process, dies mid-file
    monkeypatch.undo()
    final, part = export_path(job), part_path(export_path(job))
    assert _state(job.pk) == "running" and part.stat().st_size > 0 and not final.exists()
    client = login(dora)
    assert client.get(reverse("export_download", kwargs={"export_pk": job.pk})).status_code == 404
    status = client.get(reverse("export_status", kwargs={"export_pk": job.pk}), {"format": "json"})
    assert status.json()["download"] is False
    # The broker delivers the message again (acks_late): a worker redoes it from scratch.
    assert run_export.delay(job.pk).get(timeout=60) == "done"
    job.refresh_from_db()
    assert (job.state, job.progress) == ("done", 100) and not part.exists()
    root = ET.parse(final).getroot()  # noqa: S314 - our own file; complete, it parses
    forms = root.findall(".//{http://www.cdisc.org/ns/odm/v1.3}FormData")
    records = root.findall(".//{http://www.cdisc.org/ns/odm/v1.3}AuditRecord")
    assert job.rows == len(forms) + len(records) > 10
    assert client.get(reverse("export_download", kwargs={"export_pk": job.pk})).status_code == 200


def test_a_second_delivery_while_the_first_writes_leaves_the_export_alone(
    trial,  # noqa: F811 - fixture
    celery_worker,
    export_dir,
):
    job = ExportJob.objects.create(
        requested_by=trial.user("tom_statistician"), study=trial.s1, format="sdtm", blinded=False
    )
    with connection.cursor() as cursor:  # "another worker" is writing this export
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, job.pk])
    try:
        assert run_export.delay(job.pk).get(timeout=30) == "busy"
        assert _state(job.pk) == "pending" and not export_dir.exists()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, job.pk])
    assert run_export.delay(job.pk).get(timeout=30) == "done"
    assert export_path(job).is_file()
