"""How the CSV export reads its tables (issue #9): each table's query prepared once per database
connection and streamed, a batch of patients per statement, the export's progress reported between
statements (a streaming statement holds the connection the report writes with)."""

from __future__ import annotations

import zipfile
from datetime import date, timedelta

import pytest
from django.db import connection

from lesions.models import Lesion
from patients.models import Consent, LabResult
from studies.exports import export_study, sources, writer
from studies.models import ExportJob
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

START = date(2024, 3, 1)


@pytest.fixture
def study(world):
    """S1 with four patients (two at each site), a few rows each in three tables."""
    alice = world.user("alice_pi")
    patients = [
        world.patient_a,
        world.patient_b,
        PatientFactory(study_site=world.site_a, subject_id="S1-01-002"),
        PatientFactory(study_site=world.site_b, subject_id="S1-02-002"),
    ]
    for n, patient in enumerate(patients):
        Consent.objects.create(
            patient=patient, consented_on=START, form_version=f"v{n}, final", obtained_by=alice
        )
        for i in range(3):
            Lesion.objects.create(
                patient=patient, label=f"T{i}", organ="lung", category="target", location="a,b"
            )
            LabResult.objects.create(
                patient=patient,
                sampled_on=START + timedelta(days=i),
                analyte="neutrophils",
                value=n + i,
                unit="G/L",
                value_standard=n + i,
                standard_unit="10^9/L",
            )
    return world


def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


class Statements:
    """The statements run on the connection (``execute_wrapper``: streamed ones included)."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)

    def starting(self, prefix: str) -> list[str]:
        return [s for s in self.sql if s.startswith(prefix)]


# A report written while a statement streams would wait forever; the database set-up the first
# test of a process may run is not counted.
@pytest.mark.timeout(30, func_only=True)
def test_progress_written_to_the_database_is_reported_between_streamed_statements(
    study, tmp_path, monkeypatch
):
    monkeypatch.setattr(writer, "REPORT_EVERY_SECONDS", 0)
    monkeypatch.setattr(sources, "PATIENT_BATCH", 1)
    dora = study.user("dora_datamanager")
    job = ExportJob.objects.create(requested_by=dora, study=study.s1, format="csv")
    seen = []

    def report(percent: int, rows: int) -> None:
        seen.append((percent, rows))
        ExportJob.objects.filter(pk=job.pk).update(progress=percent, rows=rows)  # as the task

    reported = tmp_path / "reported.zip"
    rows = export_study(study.s1, dora, "csv", reported, blinded=False, report=report, chunk_size=2)
    assert len(seen) >= 8 and [p for p, _r in seen] == sorted(p for p, _r in seen)
    assert rows == 4 + 4 + 12 + 12  # patients, consents, lesions, labs
    assert ExportJob.objects.get(pk=job.pk).rows == seen[-1][1] <= rows
    monkeypatch.setattr(sources, "PATIENT_BATCH", 1000)
    plain = tmp_path / "plain.zip"
    export_study(study.s1, dora, "csv", plain, blinded=False)
    assert _members(reported) == _members(plain)


def test_each_batch_of_patients_is_one_statement_of_a_prepared_query(study, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "PATIENT_BATCH", 3)
    dora = study.user("dora_datamanager")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as on a new connection (statements outlive a test)
    statements = Statements()
    with connection.execute_wrapper(statements):
        export_study(study.s1, dora, "csv", tmp_path / "1.zip", blinded=False)
    first = statements.starting("EXECUTE ")
    tables = len(statements.starting("PREPARE "))
    assert tables > 10 and len(first) == 2 * tables  # 4 patients: a batch of 3, then 1
    assert all(name.startswith(f"EXECUTE {sources.STATEMENT_PREFIX}") for name in first)
    statements.sql.clear()
    with connection.execute_wrapper(statements):
        export_study(study.s1, dora, "csv", tmp_path / "2.zip", blinded=False)
    assert statements.starting("PREPARE ") == [] and statements.starting("EXECUTE ") == first
    assert _members(tmp_path / "1.zip") == _members(tmp_path / "2.zip")


def test_statements_deallocated_since_the_last_export_are_prepared_again(study, tmp_path):
    dora = study.user("dora_datamanager")
    export_study(study.s1, dora, "csv", tmp_path / "1.zip", blinded=False)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    statements = Statements()
    with connection.execute_wrapper(statements):
        export_study(study.s1, dora, "csv", tmp_path / "2.zip", blinded=False)
    assert statements.starting("PREPARE ")
    assert _members(tmp_path / "1.zip") == _members(tmp_path / "2.zip")


def test_without_streaming_the_tables_are_read_through_server_side_cursors_alike(
    study, tmp_path, monkeypatch
):
    dora = study.user("dora_datamanager")
    export_study(study.s1, dora, "csv", tmp_path / "streamed.zip", blinded=False)
    monkeypatch.setattr(sources, "_streams", lambda db: False)
    statements = Statements()
    with connection.execute_wrapper(statements):
        export_study(study.s1, dora, "csv", tmp_path / "cursors.zip", blinded=False)
    assert statements.starting("EXECUTE ") == [] and statements.starting("PREPARE ") == []
    assert _members(tmp_path / "streamed.zip") == _members(tmp_path / "cursors.zip")


def _plans() -> tuple[int, int]:
    """(generic, custom): executions of the export's prepared statements on each kind of plan."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) "
            "FROM pg_prepared_statements WHERE starts_with(name, %s)",
            [sources.STATEMENT_PREFIX],
        )
        generic, custom = cursor.fetchone()
    return int(generic), int(custom)


def _plan_cache_mode() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        return cursor.fetchone()[0]


def test_the_prepared_queries_run_on_generic_plans_and_the_session_setting_is_restored(
    study, tmp_path
):
    dora = study.user("dora_datamanager")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert _plan_cache_mode() == "auto"
    export_study(study.s1, dora, "csv", tmp_path / "1.zip", blinded=False)
    generic, custom = _plans()
    # By default the first five executions of each would be planned for their values.
    assert generic > 10 and custom == 0
    assert _plan_cache_mode() == "auto"
    export_study(study.s1, dora, "csv", tmp_path / "2.zip", blinded=False)
    assert _plans() == (2 * generic, 0)  # each execution on the generic plan
    assert _members(tmp_path / "1.zip") == _members(tmp_path / "2.zip")


def test_the_session_setting_is_restored_when_an_export_fails(study, tmp_path, monkeypatch):
    from studies.exports import csv_export

    def broken(zf, tables):
        raise RuntimeError("disk full")

    monkeypatch.setattr(csv_export, "_write_dictionary", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_study(
            study.s1, study.user("dora_datamanager"), "csv", tmp_path / "x.zip", blinded=False
        )
    assert _plan_cache_mode() == "auto"
    assert not (tmp_path / "x.zip").exists()


# --- the statements chained one after the other (sources.chained_chunks) ------------------------


def _chain(study, names: list[str | None]):
    """The context of Dora's export and, for each name, its table's compiled CSV query (None for
    a table formatted in Python)."""
    from studies.exports import csv_export
    from studies.exports.tables import prepare

    ctx = sources.make_context(study.s1, study.user("dora_datamanager"), blinded=False)
    by_name = {prepared.name: prepared for prepared in prepare(ctx)}
    compiled = []
    for name in names:
        if name is None:
            compiled.append(None)
            continue
        prepared = by_name[name]
        row = sources.sql_row(prepared)
        tokens = lambda p=prepared, r=row: csv_export._line_tokens(p, r)  # noqa: E731
        compiled.append(sources.compiled(ctx, prepared, ("csv", row.iso_dates), tokens))
    return ctx, compiled


class Log:
    """What happened, in order: statements sent (execute wrapper) and items handed over."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith("EXECUTE "):
            self.events.append(("sent", sql))
        return execute(sql, params, many, context)

    def read(self, chunks) -> None:
        for index, chunk in chunks:
            self.events.append(("end", index) if chunk is None else ("rows", index, chunk[1]))

    def position(self, event) -> int:
        return self.events.index(event)


def _nothing_held():
    from contextlib import nullcontext

    return nullcontext()


def test_the_next_statement_is_sent_before_the_last_rows_of_the_one_before_are_handed_over(study):
    ctx, compiled = _chain(study, ["consent", "lesions", None, "labs"])
    log = Log()
    with connection.execute_wrapper(log):
        log.read(sources.chained_chunks(ctx, compiled, _nothing_held))
    sent = [e for e in log.events if e[0] == "sent"]
    assert len(sent) == 3
    rows = {index: sum(e[2] for e in log.events if e[:2] == ("rows", index)) for index in range(4)}
    assert rows == {0: 4, 1: 12, 2: 0, 3: 12}
    # Lesions were sent before the consents were handed over: PostgreSQL reads them meanwhile.
    assert log.position(sent[1]) < log.position(("rows", 0, 4)) < log.position(("end", 0))
    # Not across the table formatted in Python: the caller reads it on an idle connection.
    assert log.position(("end", 2)) < log.position(sent[2])
    assert [e for e in log.events if e[0] == "end"] == [("end", i) for i in range(4)]


def test_no_statement_is_sent_ahead_while_a_progress_report_is_due(study):
    ctx, compiled = _chain(study, ["consent", "lesions", "labs"])
    log = Log()
    with connection.execute_wrapper(log):
        log.read(sources.chained_chunks(ctx, compiled, _nothing_held, pause=lambda: True))
    sent = [e for e in log.events if e[0] == "sent"]
    for index in (0, 1):
        assert log.position(("end", index)) < log.position(sent[index + 1])


def test_a_failed_statement_is_a_database_error_and_leaves_the_connection_usable(study):
    from django.db import DatabaseError, transaction

    ctx, compiled = _chain(study, ["consent", "lesions"])
    failing = sources.Compiled(
        compiled[1].alias, "SELECT (1 / (cardinality(", "::bigint[]) - 4))::text AS export_text"
    )
    chunks = sources.chained_chunks(ctx, [compiled[0], failing], _nothing_held)
    with pytest.raises(DatabaseError, match="division by zero"), transaction.atomic():
        list(chunks)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_reader_that_stops_early_leaves_the_connection_usable(study):
    ctx, compiled = _chain(study, ["consent", "lesions", "labs"])
    slow = sources.Compiled(  # still running when the reader stops
        compiled[1].alias,
        "SELECT pg_sleep(0.3)::text || cardinality(",
        "::bigint[]) AS export_text",
    )
    chunks = sources.chained_chunks(ctx, [compiled[0], slow, compiled[2]], _nothing_held)
    assert next(chunks)[0] == 0  # the slow statement is sent by now
    chunks.close()  # what is left of it is read and dropped, not cancelled
    with connection.cursor() as cursor:  # the test's transaction is still usable
        cursor.execute("SELECT count(*) FROM patients_labresult")
        assert cursor.fetchone() == (12,)


def test_a_failure_while_a_statement_runs_ahead_leaves_the_connection_usable(
    study, tmp_path, monkeypatch
):
    from studies.exports import csv_export

    written = []
    header = csv_export._header_bytes

    def failing(prepared):
        written.append(prepared.name)
        if len(written) == 3:  # by now the next table's statement is sent ahead
            raise RuntimeError("disk full")
        return header(prepared)

    monkeypatch.setattr(csv_export, "_header_bytes", failing)
    dora = study.user("dora_datamanager")
    with pytest.raises(RuntimeError, match="disk full"):
        export_study(study.s1, dora, "csv", tmp_path / "x.zip", blinded=False)
    assert _plan_cache_mode() == "auto"  # reset on a connection free for it
    monkeypatch.setattr(csv_export, "_header_bytes", header)
    export_study(study.s1, dora, "csv", tmp_path / "y.zip", blinded=False)
    assert "labs.csv" in _members(tmp_path / "y.zip")
