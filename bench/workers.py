"""The measurements, run inside Django (``config.settings.bench``), one per process.

Each ``run_*`` function returns a JSON-able dict: raw samples, medians, query counts, and the
process's peak memory. ``bench/run.py`` starts one fresh process per measurement.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.htmlforms import entry_form, form_errors, post_data
from bench.report import median

SETTINGS = "config.settings.bench"
#: Reps of the long jobs (exports, whole-portfolio RECIST): at most this many, and no fewer than
#: the issue asks of every median (5: the first run of a process, statements not yet prepared and
#: caches cold, is then never the median).
LONG_JOB_REPS = 5


def interleaved(names: list[str], reps: int) -> list[list[str]]:
    """The order of each rep: every name once per rep, the start rotating from rep to rep.

    Round-robin over all pages rep by rep (never N in a row of one page), so that slow drifts of
    the machine spread over every page alike.
    """
    if not names:
        return [[] for _ in range(reps)]
    return [names[r % len(names) :] + names[: r % len(names)] for r in range(reps)]


def rss_peak_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class QueryCounter:
    """``connection.execute_wrapper`` hook counting queries (works with DEBUG off)."""

    def __init__(self, keep_sql: bool = False) -> None:
        self.count = 0
        self.keep_sql = keep_sql
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if self.keep_sql:
            self.sql.append(str(sql)[:400])
        return execute(sql, params, many, context)


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()


def _timed(fn: Callable[[], object], keep_sql: bool = False) -> tuple[float, int, object, list]:
    """(seconds, queries, result, sql) of one call."""
    from django.db import connection

    counter = QueryCounter(keep_sql)
    with connection.execute_wrapper(counter):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    return elapsed, counter.count, result, counter.sql


def _user(username: str, *fallbacks: str):
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    for name in (username, *fallbacks):
        user = users.filter(username=name).first()
        if user is not None:
            return user
    raise LookupError(f"user {username!r} not found (generate the portfolio first)")


@dataclass
class Targets:
    site: object
    patient: object
    investigator: object
    data_manager: object
    monitor: object


def resolve_targets() -> Targets:
    """The bench site and patient and the contract's users (``studies/portfolio.py``)."""
    from studies import portfolio

    site, patient = portfolio.bench_site(), portfolio.bench_patient()
    if site is None or patient is None:
        raise LookupError("no bench site or patient: is this a generated portfolio?")
    return Targets(
        site=site,
        patient=patient,
        investigator=_user("synth-investigator"),
        data_manager=_user("synth-dm"),
        monitor=_user("synth-monitor", "synth-dm"),
    )


@dataclass
class Page:
    name: str
    group: str  # see PageSpec
    role: str  # investigator | data_manager
    url: str | None
    method: str = "GET"
    data: dict | None = None
    error: str = ""
    enctype: str = ""  # of the posted form (bench.htmlforms.URLENCODED unless it says otherwise)


def _objects_of(patient) -> dict[str, object | None]:
    from lesions.models import ImagingAssessment
    from patients.models import AdverseEvent, LabResult
    from treatments.models import RadiotherapyCourse, SystemicLine

    return {
        "scan": ImagingAssessment.objects.filter(patient=patient, is_baseline=False)
        .order_by("scan_date", "pk")
        .first(),
        # A plain event: saving it again queues no SAE email and records no death.
        "ae": AdverseEvent.objects.filter(patient=patient)
        .order_by("serious", "grade", "pk")
        .first(),
        # The latest result: a sample of the study (a correction of a screening sample taken
        # before consent is refused by the service).
        "lab": LabResult.objects.filter(patient=patient).order_by("-sampled_on", "-pk").first(),
        "course": RadiotherapyCourse.objects.filter(patient=patient).order_by("pk").first(),
        "line": SystemicLine.objects.filter(patient=patient).order_by("pk").first(),
    }


def _audit_changelist() -> tuple[str | None, str]:
    from django.contrib import admin

    from lesions.models import Measurement
    from patients.models import Patient
    from studies.audit import event_model_for

    for model in (Measurement, Patient):
        try:
            event = event_model_for(model)
        except LookupError:
            continue
        if event in admin.site._registry:
            opts = event._meta
            return f"admin:{opts.app_label}_{opts.model_name}_changelist", opts.label
    return None, "no pghistory event admin of Measurement or Patient is registered"


SITE_PAGES = ("patient_list", "study_site_detail", "site_forms", "site_visits")
PATIENT_PAGES = (
    "patient_detail",
    "patient_facts",
    "patient_consent",
    "patient_lesions",
    "patient_visits",
    "patient_aes",
    "patient_labs",
    "patient_courses",
    "patient_lines",
)
#: CRF pages of one record: (URL name, object of the bench patient, URL keyword).
EDIT_PAGES = (
    ("scan_edit", "scan", "scan_pk"),
    ("course_edit", "course", "course_pk"),
    ("line_edit", "line", "line_pk"),
    ("ae_edit", "ae", "ae_pk"),
    ("lab_edit", "lab", "lab_pk"),
)
POSTED_PAGES = ("scan_edit", "course_edit", "line_edit", "ae_edit", "lab_edit")
ADMIN_MODELS = ("patients_patient", "patients_adverseevent", "patients_labresult")


@dataclass(frozen=True)
class PageSpec:
    label: str
    group: str  # floor_bare, floor_table, floor_changelist, list, casebook, crf_*, admin*
    role: str  # investigator | data_manager
    url_name: str
    scope: str = ""  # "", "site" or "patient": the URL's keyword
    obj: str = ""  # a record of the bench patient (EDIT_PAGES)
    key: str = ""
    method: str = "GET"


def page_specs(audit_url_name: str | None) -> list[PageSpec]:
    """Every measured page, the floors first."""
    inv, dm = "investigator", "data_manager"
    specs = [
        PageSpec("floor: bare view", "floor_bare", inv, "bench_bare"),
        PageSpec("floor: 200-row table", "floor_table", inv, "bench_table"),
        PageSpec(
            "floor: bare changelist",
            "floor_changelist",
            dm,
            "bench_admin:patients_ctcaeterm_changelist",
        ),
        *(PageSpec(name, "list", inv, name, "site") for name in SITE_PAGES),
        PageSpec("casebook", "casebook", inv, "casebook", "patient"),
        *(PageSpec(name, "crf_get", inv, name, "patient") for name in PATIENT_PAGES),
        *(PageSpec(n, "crf_get", inv, n, "patient", obj, key) for n, obj, key in EDIT_PAGES),
        *(
            PageSpec(f"{n} POST", "crf_post", inv, n, "patient", obj, key, "POST")
            for n, obj, key in EDIT_PAGES
            if n in POSTED_PAGES
        ),
        *(PageSpec(f"admin: {m}", "admin", dm, f"admin:{m}_changelist") for m in ADMIN_MODELS),
    ]
    if audit_url_name:
        label = audit_url_name.split(":")[1].removesuffix("_changelist")
        specs.append(PageSpec(f"admin: audit {label}", "admin_audit", dm, audit_url_name))
    return specs


def _resolve(spec: PageSpec, kwargs_of: dict[str, dict], objects: dict) -> Page:
    from django.urls import NoReverseMatch, reverse

    page = Page(spec.label, spec.group, spec.role, None, spec.method)
    kwargs = dict(kwargs_of.get(spec.scope, {}))
    if spec.obj:
        if objects[spec.obj] is None:
            page.error = f"the bench patient has no {spec.obj}"
            return page
        kwargs[spec.key] = objects[spec.obj].pk
    try:
        page.url = reverse(spec.url_name, kwargs=kwargs or None)
    except NoReverseMatch as exc:
        page.error = f"no such page: {exc}"
    return page


def build_pages(t: Targets) -> list[Page]:
    """The pages to measure for the bench site and patient (an error on those that cannot be)."""
    audit_url_name, audit_problem = _audit_changelist()
    kwargs_of = {"site": {"site_pk": t.site.pk}, "patient": {"patient_pk": t.patient.pk}}
    objects = _objects_of(t.patient)
    pages = [_resolve(spec, kwargs_of, objects) for spec in page_specs(audit_url_name)]
    if not audit_url_name:
        pages.append(Page("admin: audit", "admin_audit", "data_manager", None, error=audit_problem))
    return pages


def _client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def _request(client, page: Page):
    if page.method == "POST":
        response = _post(client, page)
        client.cookies.pop("messages", None)  # the success message is never shown: drop it
        return response
    return client.get(page.url)


def _check(page: Page, response) -> str:
    expected = 302 if page.method == "POST" else 200
    if response.status_code == expected:
        return ""
    detail = ""
    if response.status_code == 200 and page.method == "POST":
        detail = "; ".join(form_errors(response.content.decode())) or "form refused"
    elif response.status_code in (301, 302):
        detail = f"-> {response.get('Location')}"
    return f"HTTP {response.status_code} (expected {expected}) {detail}".strip()


def _post(client, page: Page):
    """Submit the form encoded as a browser does: url-encoded unless the form asks for
    multipart (the test client's default, which costs the server more to parse)."""
    from urllib.parse import urlencode

    from bench.htmlforms import URLENCODED

    if page.enctype == URLENCODED:
        body = urlencode(page.data, doseq=True)
        return client.post(page.url, body, content_type=URLENCODED)
    return client.post(page.url, page.data)


def _prepare_post(client, page: Page) -> None:
    """POST data: the edit page's own form, unchanged, with a reason for change."""
    html = client.get(page.url).content.decode()
    form = entry_form(html, page.url)
    page.data, page.enctype = post_data(form), form.enctype


def _server_version(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def run_pages(reps: int) -> dict:
    """All pages and floors, interleaved rep by rep; median time and queries of each."""
    from django.db import connection

    t = resolve_targets()
    clients = {"investigator": _client(t.investigator), "data_manager": _client(t.data_manager)}
    post_clients = {"investigator": _client(t.investigator)}
    pages = build_pages(t)
    sql: dict[str, list[str]] = {}
    for page in pages:
        if page.error:
            continue
        client = (post_clients if page.method == "POST" else clients)[page.role]
        try:
            if page.method == "POST":
                _prepare_post(clients[page.role], page)
            _elapsed, _count, response, page_sql = _timed(
                lambda c=client, p=page: _request(c, p), keep_sql=True
            )
        except Exception as exc:  # noqa: BLE001 - reported as the page's error
            page.error = f"{type(exc).__name__}: {exc}"
            continue
        page.error = _check(page, response)
        sql[page.name] = page_sql
    live = [p for p in pages if not p.error]
    by_name = {p.name: p for p in live}
    samples: dict[str, list[float]] = {p.name: [] for p in live}
    queries: dict[str, list[int]] = {p.name: [] for p in live}
    for order in interleaved([p.name for p in live], reps):
        for name in order:
            page = by_name[name]
            client = (post_clients if page.method == "POST" else clients)[page.role]
            elapsed, count, response, _sql = _timed(lambda c=client, p=page: _request(c, p))
            if problem := _check(page, response):
                raise RuntimeError(f"{page.name}: {problem}")
            samples[name].append(elapsed)
            queries[name].append(count)
    return {
        "targets": {
            "site": str(t.site),
            "site_pk": t.site.pk,
            "site_patients": t.site.patients.count(),
            "patient_pk": t.patient.pk,
            "patient": str(t.patient),
        },
        "postgres": _server_version(connection),
        "pages": [
            {
                "name": p.name,
                "group": p.group,
                "method": p.method,
                "url": p.url,
                "role": p.role,
                "error": p.error,
                "samples_s": samples.get(p.name, []),
                "median_s": median(samples.get(p.name, [])),
                "queries": queries.get(p.name, []),
                "sql": sql.get(p.name, []),
            }
            for p in pages
        ],
    }


def _reps_of(fn: Callable[[], object], reps: int) -> tuple[list[float], int, object]:
    """One warm-up call, then ``reps`` timed calls: (seconds, queries of the last, result)."""
    fn()
    samples, count, result = [], 0, None
    for _ in range(reps):
        elapsed, count, result, _sql = _timed(fn)
        samples.append(elapsed)
    return samples, count, result


def run_pdf(reps: int) -> dict:
    """The site report PDF of the bench site (median of reps), then of every site with patients."""
    from patients.models import Patient
    from studies.models import StudySite
    from studies.reports import SITE, build_report

    t = resolve_targets()
    site = t.site

    def one(study_site) -> bytes:
        return build_report(
            t.monitor, kind=SITE, study_id=study_site.study_id, study_site_id=study_site.pk
        )

    rss_before = rss_now_mb()
    samples, queries, pdf = _reps_of(lambda: one(site), reps)
    sites = list(
        StudySite.objects.filter(pk__in=Patient.objects.values("study_site_id")).order_by("pk")
    )
    start = time.perf_counter()
    for study_site in sites:
        one(study_site)
    total = time.perf_counter() - start
    return {
        "site_patients": site.patients.count(),
        "samples_s": samples,
        "median_s": median(samples),
        "queries": queries,
        "pdf_bytes": len(pdf),
        "all_sites": len(sites),
        "all_sites_s": total,
        "rss_before_mb": rss_before,
        "peak_rss_mb": rss_peak_mb(),
    }


def run_reminders(reps: int) -> dict:
    """The daily reminder scan: which reminders are due, for every followed study."""
    from patients import reminders
    from patients.models_visits import PlannedVisit
    from patients.tasks import CLOSED_STATUSES, study_local_now
    from studies.models import Study

    def scan() -> int:
        days = {}
        for study in Study.objects.exclude(status__in=CLOSED_STATUSES).order_by("pk"):
            local = study_local_now(study)
            if local is not None:
                days[study] = local.date()
        return sum(len(rows) for rows in reminders.decide_many(days).values())

    samples, queries, due = _reps_of(scan, reps)
    return {
        "function": "patients.reminders.decide_many over every followed study (the task's scan)",
        "planned_visits": PlannedVisit.objects.count(),
        "reminders_due": due,
        "samples_s": samples,
        "median_s": median(samples),
        "queries": queries,
        "peak_rss_mb": rss_peak_mb(),
    }


def run_export(fmt: str, reps: int) -> dict:
    """The export of every study of the portfolio in ``fmt`` (csv or odm), as the data manager."""
    from studies.exports import export_study
    from studies.models import ExportJob, Study

    t = resolve_targets()
    studies = list(Study.objects.order_by("pk"))
    formats = {"csv": ExportJob.Format.CSV, "odm": ExportJob.Format.ODM}
    rss_before = rss_now_mb()
    samples: list[float] = []
    rows = size = queries = 0
    with tempfile.TemporaryDirectory(prefix="oligocrf-bench-") as tmp:
        for rep in range(max(1, min(reps, LONG_JOB_REPS))):

            def everything(rep=rep) -> tuple[int, int]:
                rows = size = 0
                for study in studies:
                    path = Path(tmp) / f"{study.pk}-{rep}.{fmt}"
                    rows += export_study(study, t.data_manager, formats[fmt], path, blinded=False)
                    size += path.stat().st_size
                    path.unlink()
                return rows, size

            elapsed, queries, (rows, size), _sql = _timed(everything)
            samples.append(elapsed)
    best = median(samples)
    return {
        "studies": len(studies),
        "rows": rows,
        "bytes": size,
        "queries": queries,
        "samples_s": samples,
        "median_s": best,
        "us_per_row": best / rows * 1e6 if rows else None,
        "rss_before_mb": rss_before,
        "peak_rss_mb": rss_peak_mb(),
    }


def run_recist(reps: int) -> dict:
    """RECIST recomputation: the whole portfolio at once, and one patient as on a CRF save."""
    from lesions import services
    from patients.models import Patient

    if not hasattr(services, "recompute_many"):
        return {"error": "not available: lesions.services.recompute_many is missing"}
    t = resolve_targets()
    ids = list(Patient.objects.order_by("pk").values_list("pk", flat=True))
    whole, whole_queries, evaluations = _reps_of(
        lambda: services.recompute_many(ids), max(1, min(reps, LONG_JOB_REPS))
    )
    # On a CRF save: the engines' recomputation of the patient and the writing of its results.
    # The save's other work (the visit re-planning and the automatic edit checks that follow,
    # about as much again) is measured with the scan's POST.
    one, one_queries, _evaluation = _reps_of(
        lambda: services.recompute_many([t.patient.pk], strict=True), reps
    )
    return {
        "patients": len(ids),
        "evaluated": len(evaluations),
        "whole_samples_s": whole,
        "whole_median_s": median(whole),
        "whole_queries": whole_queries,
        "one_samples_s": one,
        "one_median_s": median(one),
        "one_queries": one_queries,
        "peak_rss_mb": rss_peak_mb(),
    }


def worker_main(kind: str, reps: int, out: Path) -> int:
    _setup_django()
    jobs: dict[str, Callable[[], dict]] = {
        "pages": lambda: run_pages(reps),
        "pdf": lambda: run_pdf(reps),
        "reminders": lambda: run_reminders(reps),
        "csv": lambda: run_export("csv", reps),
        "odm": lambda: run_export("odm", reps),
        "recist": lambda: run_recist(reps),
    }
    load_before = os.getloadavg()[0]
    try:
        result = jobs[kind]()
    except Exception as exc:  # noqa: BLE001 - the parent reports it as an ERROR row
        import traceback

        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    # The machine's 1-minute load around the measurement: other work skews every figure.
    result["load"] = [load_before, os.getloadavg()[0]]
    out.write_text(json.dumps(result, indent=1, default=str))
    return 0
