"""The benchmark harness (``bench/``, issue #9): floor pages, bench settings, and the arithmetic
and form handling its figures rest on. The timings themselves stay in ``make bench``."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench.htmlforms import URLENCODED, entry_form, form_errors, parse_forms, post_data
from bench.report import job_rows, median, page_rows, ratio, verdict
from bench.run import bench_database_name, database_url_for, output_paths
from bench.views import TABLE_ROWS
from bench.workers import Page, _post, interleaved, page_specs


@pytest.fixture
def bench_urls():
    with override_settings(ROOT_URLCONF="bench.urls"):
        yield


# --- floor pages -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_bare_floor_is_a_tiny_response(world, login, bench_urls):
    response = login(world.user("alice_pi")).get(reverse("bench_bare"))
    assert response.status_code == 200
    assert response.content == b"ok"


@pytest.mark.django_db
def test_the_table_floor_renders_200_rows_of_one_query(world, login, bench_urls):
    client = login(world.user("alice_pi"))
    client.get(reverse("bench_bare"))  # the session's first-request writes out of the count
    with CaptureQueriesContext(connection) as bare:
        client.get(reverse("bench_bare"))
    with CaptureQueriesContext(connection) as table:
        response = client.get(reverse("bench_table"))
    assert response.status_code == 200
    assert len(table) == len(bare) + 1  # the rows: one query, nothing else of its own
    html = response.content.decode()
    assert html.count("<tr><td>") == TABLE_ROWS
    assert 'class="navbar' in html  # through the site's layout, like every real page


@pytest.mark.django_db
def test_the_bare_changelist_is_a_plain_admin_for_staff_only(world, login, bench_urls):
    url = reverse("bench_admin:patients_ctcaeterm_changelist")
    response = login(world.user("carl_monitor")).get(url)  # staff
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="result_list"' in html
    assert 'id="changelist-filter"' not in html and 'id="searchbar"' not in html


@pytest.mark.django_db
def test_the_bare_changelist_refuses_site_staff(world, login, bench_urls):
    url = reverse("bench_admin:patients_ctcaeterm_changelist")
    response = login(world.user("alice_pi")).get(url)  # not staff: the admin's login page
    assert response.status_code == 302


def test_the_application_urls_are_all_there_under_the_bench_urlconf(bench_urls):
    assert reverse("patient_list", kwargs={"site_pk": 1}) == "/sites/1/patients/"
    assert reverse("admin:patients_patient_changelist") == "/admin/patients/patient/"


def test_every_measured_page_exists(bench_urls):
    """A renamed view makes the bench fail here rather than at the end of a long run."""
    kwargs = {"site": {"site_pk": 1}, "patient": {"patient_pk": 1}}
    specs = page_specs("admin:patients_patient_changelist")
    for spec in specs:
        args = dict(kwargs.get(spec.scope, {}))
        if spec.key:
            args[spec.key] = 1
        assert reverse(spec.url_name, kwargs=args or None)
    groups = {spec.group for spec in specs}
    assert {"floor_bare", "floor_table", "floor_changelist", "list", "casebook"} <= groups
    assert {"crf_get", "crf_post", "admin", "admin_audit"} <= groups
    posted = {s.url_name for s in specs if s.method == "POST"}
    assert posted == {"scan_edit", "course_edit", "ae_edit", "lab_edit", "line_edit"}


# --- settings ----------------------------------------------------------------------------------


def test_bench_settings_are_production_like():
    bench = importlib.import_module("config.settings.bench")
    assert bench.DEBUG is False
    assert bench.ROOT_URLCONF == "bench.urls"
    assert "testserver" in bench.ALLOWED_HOSTS
    assert bench.DATABASES["default"]["CONN_MAX_AGE"] is None
    loaders = bench.TEMPLATES[0]["OPTIONS"]["loaders"]
    assert loaders[0][0] == "django.template.loaders.cached.Loader"
    assert bench.TEMPLATES[0]["APP_DIRS"] is False
    assert bench.MAILERS["default"]["BACKEND"].endswith("locmem.EmailBackend")
    assert bench.CELERY_TASK_DEFAULT_QUEUE == "oligocrf-bench"


# --- arithmetic ----------------------------------------------------------------------------------


def test_median_and_ratio():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert median([]) is None
    assert ratio(0.03, 0.015) == pytest.approx(2.0)
    assert ratio(None, 0.01) is None
    assert ratio(0.01, 0.0) is None


def test_reps_are_interleaved_round_robin():
    order = interleaved(["a", "b", "c"], 4)
    assert order == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert all(sorted(rep) == ["a", "b", "c"] for rep in order)
    assert interleaved([], 2) == [[], []]


def test_bench_databases_live_on_the_apps_server():
    assert bench_database_name("L") == "oligocrf_bench_l"
    url = "postgres://u:p@db.example:5433/oligocrf?sslmode=require"
    assert database_url_for(url, "oligocrf_bench_s") == (
        "postgres://u:p@db.example:5433/oligocrf_bench_s?sslmode=require"
    )
    socket = "postgresql://postgres@/oligocrf?host=/work/var/run"
    assert database_url_for(socket, "x") == "postgresql://postgres@/x?host=/work/var/run"


def test_output_paths_pair_markdown_and_json(tmp_path):
    md, js = output_paths(str(tmp_path / "r.md"))
    assert (md.name, js.name) == ("r.md", "r.json")
    md, js = output_paths(str(tmp_path / "results"))
    assert (md.name, js.name) == ("results.md", "results.json")


def _page(name, group, median_s, queries, error=""):
    return {"name": name, "group": group, "median_s": median_s, "queries": queries, "error": error}


def _results(size_pages):
    return {size: {"pages": {"pages": pages}} for size, pages in size_pages.items()}


def test_pages_are_judged_against_their_floor_and_query_budget():
    floors = [
        _page("bare", "floor_bare", 0.005, [5]),
        _page("table", "floor_table", 0.010, [6]),
        _page("changelist", "floor_changelist", 0.020, [8]),
    ]
    pages = {
        "S": [
            *floors,
            _page("fast list", "list", 0.019, [8, 8]),
            _page("slow list", "list", 0.021, [8]),
            _page("chatty crf", "crf_get", 0.011, [13]),
            _page("post", "crf_post", 0.029, [12]),
            _page("audit", "admin_audit", 0.020, [10]),
        ],
        "L": [
            *floors,
            _page("fast list", "list", 0.019, [8, 8]),
            _page("slow list", "list", 0.019, [9]),
            _page("chatty crf", "crf_get", 0.011, [13]),
            _page("post", "crf_post", 0.031, [12]),
            _page("audit", "admin_audit", 0.029, [10]),
        ],
    }
    rows = {row.what: row for row in page_rows(_results(pages))}
    assert rows["fast list"].result == "PASS"
    assert rows["fast list"].ratio == "1.90x / 1.90x"
    assert "S 2.10x > 2.0x" in rows["slow list"].result
    assert "queries differ between S and L" in rows["slow list"].result
    assert "13 queries > 12" in rows["chatty crf"].result
    assert rows["post"].result == "FAIL (L 3.10x > 3.0x)"  # S at 2.9x passes
    assert rows["audit"].result == "PASS"  # L 1.45x S: within 1.5x
    assert rows["table"].ratio == "2.00x / 2.00x"


def test_the_audit_changelist_must_not_grow_with_the_audit_table():
    floors = [_page("changelist", "floor_changelist", 0.020, [8])]
    pages = {
        "S": [*floors, _page("audit", "admin_audit", 0.010, [10])],
        "L": [*floors, _page("audit", "admin_audit", 0.016, [10])],
    }
    (_floor, audit) = page_rows(_results(pages))
    assert audit.result == "FAIL (L is 1.60x S > 1.5x)"


def test_an_unreachable_page_is_an_error_not_a_pass():
    pages = {
        "S": [_page("table", "floor_table", 0.01, [6]), _page("x", "list", None, [], "HTTP 403")]
    }
    (_floor, row) = page_rows(_results(pages))
    assert row.result.startswith("ERROR") and "HTTP 403" in row.result


def test_verdict():
    assert verdict([]) == "PASS"
    assert verdict(["a", "b"]) == "FAIL (a; b)"
    assert verdict([], measured=False) == "n/a"


# --- forms as a browser submits them -------------------------------------------------------------

FORM_PAGE = """
<form action="/i18n/setlang/" method="post"><select name="language">
  <option value="en" selected>English</option><option value="fr">French</option></select></form>
<form method="post">
  <input type="hidden" name="csrfmiddlewaretoken" value="tok">
  <input type="text" name="onset_on" value="2026-01-02">
  <input type="checkbox" name="serious">
  <input type="checkbox" name="dlt" checked>
  <input type="radio" name="arm" value="A"><input type="radio" name="arm" value="B" checked>
  <input type="text" name="locked" value="x" disabled>
  <select name="term"><option value="">---</option>
    <optgroup label="Blood"><option value="7" selected>Anaemia</option></optgroup></select>
  <select name="action"><option value="none">None</option><option value="reduced">R</option>
  </select>
  <select name="agents" multiple><option value="1" selected>a</option>
    <option value="2">b</option><option value="3" selected>c</option></select>
  <textarea name="reason">
</textarea>
  <textarea name="detail">
line</textarea>
  <button type="submit" name="save" value="1">Save</button>
  <button type="submit" name="other" value="2">Other</button>
</form>
<form method="get"><input name="q" value="search"></form>
"""


def test_the_entry_form_is_submitted_as_a_browser_would():
    form = entry_form(FORM_PAGE, "/patients/1/adverse-events/2/")
    assert form.fields == [
        ("csrfmiddlewaretoken", "tok"),
        ("onset_on", "2026-01-02"),
        ("dlt", "on"),
        ("arm", "B"),
        ("term", "7"),
        ("action", "none"),
        ("agents", "1"),
        ("agents", "3"),
        ("reason", ""),
        ("detail", "line"),
        ("save", "1"),
    ]
    data = post_data(form, reason="bench")
    assert "csrfmiddlewaretoken" not in data
    assert data["reason"] == ["bench"]
    assert data["agents"] == ["1", "3"]


def test_a_shown_confirmation_is_ticked_and_other_unticked_boxes_stay_unticked():
    page = """<form method="post">
      <input type="checkbox" name="confirm_deviations">
      <input type="checkbox" name="serious">
      <input type="text" name="reason" value="">
    </form>"""
    form = entry_form(page, "/patients/1/sbrt/2/")
    assert form.unticked == {"confirm_deviations", "serious"}
    data = post_data(form)
    assert data["confirm_deviations"] == ["on"]
    assert "serious" not in data
    assert "confirm_deviations" not in post_data(entry_form(FORM_PAGE, "/patients/1/ae/2/"))


@pytest.mark.parametrize(
    ("attribute", "enctype"),
    [("", URLENCODED), (' enctype="multipart/form-data"', "multipart/form-data")],
)
def test_the_form_is_posted_in_its_own_encoding_with_every_value(attribute, enctype):
    """A browser url-encodes a form unless it asks for multipart: so does the bench, and the
    view reads the same values either way."""
    html = FORM_PAGE.replace('<form method="post"', f"<form method=post{attribute}")
    form = entry_form(html, "/")
    assert form.enctype == enctype
    page = Page("ae_edit POST", "crf_post", "investigator", "/patients/1/ae/2/", "POST")
    page.data, page.enctype = post_data(form, reason="bench & co"), form.enctype
    request = _post(RequestFactory(), page)
    assert request.content_type == enctype
    assert dict(request.POST.lists()) == page.data


def test_a_page_without_its_own_post_form_is_refused():
    with pytest.raises(LookupError):
        entry_form('<form method="post" action="/elsewhere/"></form>', "/here/")
    assert len(parse_forms(FORM_PAGE)) == 3


def test_form_errors_are_read_from_the_refused_page():
    html = '<div class="invalid-feedback"><b>The patient&#x27;s <em>consent</em>.</b></div>'
    assert form_errors(html) == ["The patient's consent"]


def test_jobs_are_judged_and_jobs_not_run_are_left_out():
    results = {
        "S": {"reminders": {"median_s": 0.05, "queries": 11, "planned_visits": 10}},
        "L": {
            "reminders": {"median_s": 0.25, "queries": 11, "planned_visits": 100},
            "csv": {"median_s": 1.0, "rows": 200_000, "us_per_row": 5.0, "peak_rss_mb": 130},
        },
    }
    results["S"]["csv"] = {"median_s": 0.1, "rows": 20_000, "us_per_row": 5.0, "peak_rss_mb": 100}
    rows = {row.what.split(" (")[0]: row for row in job_rows(results)}
    assert set(rows) == {
        "daily reminder scan",
        "full-portfolio CSV export",
        "full-portfolio CSV export peak memory",
    }
    reminder = rows["daily reminder scan"].result
    assert "S 11 queries > 5" in reminder and "L 250 ms > 200" in reminder
    assert rows["full-portfolio CSV export"].result == "PASS"
    assert rows["full-portfolio CSV export peak memory"].result == "FAIL (L/S 1.30x > 1.2x)"


def test_long_jobs_are_timed_over_as_many_repetitions_as_the_pages():
    """Issue #9: every figure is a median of at least 5 repetitions (exports and the whole
    RECIST recomputation included: a job's cold first run is then never its median)."""
    from bench.run import MIN_REPS
    from bench.workers import LONG_JOB_REPS

    assert LONG_JOB_REPS >= MIN_REPS
