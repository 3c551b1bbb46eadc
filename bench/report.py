"""The results table of the benchmark: figures against the targets of issue #9."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

SIZES = ("S", "L")


def median(samples: Iterable[float]) -> float | None:
    """The median of the samples, None when there are none."""
    values = [s for s in samples if s is not None]
    return statistics.median(values) if values else None


def ratio(value: float | None, floor: float | None) -> float | None:
    """``value`` as a multiple of ``floor`` (None when either is missing or the floor is 0)."""
    if value is None or not floor:
        return None
    return value / floor


PAGE_TARGETS = {
    # group: (floor group, max ratio, max queries, target text)
    "list": ("floor_table", 2.0, 12, "<= 2x table floor, <= 12 queries, same at S and L"),
    "casebook": ("floor_table", 3.0, 12, "<= 3x table floor, <= 12 queries, same at S and L"),
    "crf_get": ("floor_table", 2.0, 12, "<= 2x table floor, <= 12 queries, same at S and L"),
    "crf_post": ("floor_table", 3.0, 12, "<= 3x table floor, <= 12 queries, same at S and L"),
    "admin": ("floor_changelist", 1.5, 15, "<= 1.5x bare changelist, <= 15 queries, same S/L"),
    "admin_audit": (
        "floor_changelist",
        1.5,
        15,
        "<= 1.5x bare changelist, <= 15 queries, same S/L, L <= 1.5x S",
    ),
}


@dataclass
class Row:
    what: str
    s: str = ""
    l: str = ""  # noqa: E741 - the size L
    ratio: str = ""
    queries: str = ""
    target: str = ""
    result: str = ""


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.1f} ms"


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _pair(values: dict, fmt: Callable) -> tuple[str, str]:
    return fmt(values.get("S")), fmt(values.get("L"))


def verdict(problems: list[str], measured: bool = True) -> str:
    if not measured:
        return "n/a"
    return "PASS" if not problems else "FAIL (" + "; ".join(problems) + ")"


def _page_index(results: dict) -> dict[str, dict[str, dict]]:
    """size -> page name -> page result."""
    return {
        size: {p["name"]: p for p in r.get("pages", {}).get("pages", [])}
        for size, r in results.items()
    }


def _floors(results: dict) -> dict[str, dict[str, float | None]]:
    """size -> floor group -> median seconds."""
    floors: dict[str, dict[str, float | None]] = {}
    for size, r in results.items():
        pages = r.get("pages", {}).get("pages", [])
        floors[size] = {p["group"]: p["median_s"] for p in pages if p["group"].startswith("floor")}
    return floors


def page_rows(results: dict) -> list[Row]:
    index = _page_index(results)
    floors = _floors(results)
    names: list[str] = []
    for pages in index.values():
        names += [n for n in pages if n not in names]
    rows = []
    for name in names:
        per = {size: pages[name] for size, pages in index.items() if name in pages}
        rows.append(_page_row(name, per, floors))
    return rows


def _page_row(name: str, per: dict[str, dict], floors: dict) -> Row:
    any_page = next(iter(per.values()))
    group = any_page["group"]
    times = {size: p["median_s"] for size, p in per.items()}
    errors = [f"{size}: {p['error']}" for size, p in per.items() if p["error"]]
    queries = {size: max(p["queries"]) if p["queries"] else None for size, p in per.items()}
    row = Row(name, *_pair(times, _ms))
    row.queries = " / ".join(
        str(queries.get(s, "")) if queries.get(s) is not None else "" for s in SIZES
    )
    if group.startswith("floor"):
        bare = {s: ratio(times.get(s), floors.get(s, {}).get("floor_bare")) for s in per}
        row.ratio = " / ".join(_x(bare.get(s)) for s in SIZES) if group != "floor_bare" else ""
        row.target, row.result = "floor (ratio: to the bare view)", ""
        if errors:
            row.result = "ERROR " + "; ".join(errors)
        return row
    floor_group, max_ratio, max_queries, row.target = PAGE_TARGETS[group]
    ratios = {s: ratio(times.get(s), floors.get(s, {}).get(floor_group)) for s in per}
    row.ratio = " / ".join(_x(ratios.get(s)) for s in SIZES)
    if errors:
        row.result = "ERROR " + "; ".join(errors)
        return row
    problems = []
    for size, value in ratios.items():
        if value is not None and value > max_ratio:
            problems.append(f"{size} {value:.2f}x > {max_ratio}x")
    for size, count in queries.items():
        if count is not None and count > max_queries:
            problems.append(f"{size} {count} queries > {max_queries}")
    if "S" in queries and "L" in queries and queries["S"] != queries["L"]:
        problems.append("queries differ between S and L")
    if group == "admin_audit" and times.get("S") and times.get("L"):
        growth = times["L"] / times["S"]
        if growth > 1.5:
            problems.append(f"L is {growth:.2f}x S > 1.5x")
    return Row(row.what, row.s, row.l, row.ratio, row.queries, row.target, verdict(problems))


def _job(results: dict, kind: str) -> dict[str, dict]:
    """size -> the job's result, for the sizes where the job ran."""
    return {size: r[kind] for size, r in results.items() if r.get(kind)}


def _errors(per: dict[str, dict]) -> list[str]:
    return [f"{size}: {r['error']}" for size, r in per.items() if r.get("error")]


def _mb(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} MB"


def job_rows(results: dict) -> list[Row]:
    """The rows of the jobs that ran (``--only`` may leave some out)."""
    jobs: list[tuple[str, Callable[[dict], list[Row]]]] = [
        ("pdf", _pdf_rows),
        ("reminders", _reminder_rows),
        ("csv", lambda per: _export_rows("csv", per, 10.0)),
        ("odm", lambda per: _export_rows("odm", per, None)),
        ("recist", _recist_rows),
    ]
    rows: list[Row] = []
    for kind, make in jobs:
        if per := _job(results, kind):
            rows += make(per)
    return rows


def _error_row(what: str, target: str, errors: list[str]) -> Row:
    return Row(what, target=target, result="ERROR " + "; ".join(errors))


def _limit(per: dict, key: str, limit: float, label: str, scale: float = 1.0) -> list[str]:
    return [
        f"{size} {r[key] * scale:.4g} {label} > {limit * scale:g}"
        for size, r in per.items()
        if r.get(key) is not None and r[key] > limit
    ]


def _pdf_rows(per: dict[str, dict]) -> list[Row]:
    if errors := _errors(per):
        return [_error_row("per-site PDF report", "<= 1.5 s; all sites <= 60 s; <= 200 MB", errors)]
    one = {s: r.get("median_s") for s, r in per.items()}
    total = {s: r.get("all_sites_s") for s, r in per.items()}
    peak = {s: r.get("peak_rss_mb") for s, r in per.items()}
    return [
        Row(
            "per-site PDF report (bench site, "
            + "/".join(str(r.get("site_patients")) for r in per.values())
            + " patients)",
            *_pair(one, _ms),
            queries=" / ".join(str(per.get(s, {}).get("queries", "")) for s in SIZES),
            target="<= 1.5 s",
            result=verdict(_limit(per, "median_s", 1.5, "s")),
        ),
        Row(
            "PDF reports of all sites ("
            + "/".join(str(r.get("all_sites")) for r in per.values())
            + " sites)",
            *_pair(total, lambda v: "" if v is None else f"{v:.1f} s"),
            target="<= 60 s",
            result=verdict(_limit(per, "all_sites_s", 60.0, "s")),
        ),
        Row(
            "PDF peak memory (process)",
            *_pair(peak, _mb),
            target="<= 200 MB",
            result=verdict(_limit(per, "peak_rss_mb", 200.0, "MB")),
        ),
    ]


def _reminder_rows(per: dict[str, dict]) -> list[Row]:
    target = "<= 200 ms, <= 5 queries"
    if errors := _errors(per):
        return [_error_row("daily reminder scan", target, errors)]
    problems = _limit(per, "median_s", 0.2, "ms", 1000) + _limit(per, "queries", 5, "queries")
    visits = "/".join(str(r.get("planned_visits")) for r in per.values())
    return [
        Row(
            f"daily reminder scan ({visits} planned visits)",
            *_pair({s: r.get("median_s") for s, r in per.items()}, _ms),
            queries=" / ".join(str(per.get(s, {}).get("queries", "")) for s in SIZES),
            target=target,
            result=verdict(problems),
        )
    ]


def _growth(per: dict[str, dict], key: str) -> float | None:
    s, l_ = per.get("S", {}).get(key), per.get("L", {}).get(key)
    return l_ / s if s and l_ else None


def _export_rows(fmt: str, per: dict[str, dict], us_per_row: float | None) -> list[Row]:
    what = f"full-portfolio {fmt.upper()} export"
    if errors := _errors(per):
        return [_error_row(what, "streamed", errors)]
    rows_written = "/".join(str(r.get("rows")) for r in per.values())
    time_row = Row(
        f"{what} ({rows_written} rows)",
        *_pair(
            {s: r.get("median_s") for s, r in per.items()},
            lambda v: "" if v is None else f"{v:.2f} s",
        ),
        ratio=" / ".join(
            "" if per.get(s, {}).get("us_per_row") is None else f"{per[s]['us_per_row']:.1f} us/row"
            for s in SIZES
        ),
        queries=" / ".join(str(per.get(s, {}).get("queries", "")) for s in SIZES),
        target="" if us_per_row is None else f"<= {us_per_row:g} us per row",
        result=""
        if us_per_row is None
        else verdict(_limit(per, "us_per_row", us_per_row, "us/row")),
    )
    growth = _growth(per, "peak_rss_mb")
    memory_row = Row(
        f"{what} peak memory",
        *_pair({s: r.get("peak_rss_mb") for s, r in per.items()}, _mb),
        ratio="" if growth is None else f"L/S {growth:.2f}x",
        target="L within 1.2x of S",
        result=verdict(
            [f"L/S {growth:.2f}x > 1.2x"] if growth and growth > 1.2 else [],
            measured=growth is not None,
        ),
    )
    return [time_row, memory_row]


def _recist_rows(per: dict[str, dict]) -> list[Row]:
    if errors := _errors(per):
        return [_error_row("RECIST recomputation", "<= 2 s whole, <= 10 ms one", errors)]
    patients = "/".join(str(r.get("patients")) for r in per.values())
    return [
        Row(
            f"RECIST recomputation, whole portfolio ({patients} patients)",
            *_pair({s: r.get("whole_median_s") for s, r in per.items()}, _ms),
            queries=" / ".join(str(per.get(s, {}).get("whole_queries", "")) for s in SIZES),
            target="<= 2 s",
            result=verdict(_limit(per, "whole_median_s", 2.0, "s")),
        ),
        Row(
            "RECIST recomputation, one patient (on save)",
            *_pair({s: r.get("one_median_s") for s, r in per.items()}, _ms),
            queries=" / ".join(str(per.get(s, {}).get("one_queries", "")) for s in SIZES),
            target="<= 10 ms",
            result=verdict(_limit(per, "one_median_s", 0.01, "ms", 1000)),
        ),
    ]


def markdown(rows: list[Row], machine: dict, reps: int, sizes: list[str], notes: list[str]) -> str:
    head = "| what | S | L | ratio S / L | queries S / L | target | result |"
    lines = [
        f"Benchmark run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, sizes {', '.join(sizes)}, "
        f"medians of {reps} interleaved repetitions (DEBUG off, cached templates, persistent "
        "connections; page times are in-process Django test-client requests).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB RAM; "
        f"Python {machine['python']}, Django {machine['django']}, "
        f"PostgreSQL {machine['postgresql']}.",
        "",
        head,
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r.what, r.s, r.l, r.ratio, r.queries, r.target, r.result]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"
