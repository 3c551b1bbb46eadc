"""The benchmark of issue #9 (``make bench``): every page and job timed at portfolio sizes S and L.

Usage::

    python -m bench.run [--sizes S,L] [--reps 7] [--regenerate] [--seed N] [--out PATH] [--strict]

For each size the parent process:

1. creates (or reuses) the database ``oligocrf_bench_<size>`` on the server of ``DATABASE_URL``
   (or of the embedded PostgreSQL the app starts when it is unset), migrates it, and fills it
   with ``manage.py generate_portfolio --size <size>`` unless the ``bench_marker`` table says it
   already holds a portfolio of the same generator version, size and seed;
2. runs each measurement in a fresh subprocess (settings ``config.settings.bench``: DEBUG off,
   cached templates, persistent connections), which writes its figures as JSON: the pages (one
   process, all pages interleaved rep by rep with the floors), the per-site PDF report, the
   reminder scan, the CSV export, the ODM export and the RECIST recomputation (one process each,
   so that each peak memory figure is that job's own).

The parent then compares the figures with the targets of the issue and writes a markdown table
and the raw samples (``<out>.md``, ``<out>.json``). Targets that fail are printed as FAIL; the
exit status is 0 unless ``--strict`` (then 1 on any FAIL or ERROR).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.report import SIZES, job_rows, markdown, page_rows

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS = "config.settings.bench"
DEFAULT_REPS = 7
MIN_REPS = 5
DEFAULT_OUT = BASE_DIR / "var" / "bench" / "results.md"
MARKER_TABLE = "bench_marker"
GENERATOR_FILES = ("studies/portfolio.py", "studies/management/commands/generate_portfolio.py")
GENERATOR_PACKAGE = "studies/portfolio"
WORKERS = ("pages", "pdf", "reminders", "csv", "odm", "recist")


def database_url_for(base_url: str, name: str) -> str:
    """``base_url`` with its database name replaced by ``name`` (host, options kept)."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def bench_database_name(size: str) -> str:
    return f"oligocrf_bench_{size.lower()}"


# --- parent side: databases, generation, workers -----------------------------------------------


def base_database_url() -> str:
    """The app's database server: DATABASE_URL, else the embedded PostgreSQL (started if needed)."""
    url = os.environ.get("DATABASE_URL", "")
    if url:
        return url
    from config import embedded

    return embedded.database_url()


def generator_version() -> str:
    """GENERATOR_VERSION of studies/portfolio.py if it declares one, else a hash of its sources."""
    files = [BASE_DIR / f for f in GENERATOR_FILES] + sorted(
        (BASE_DIR / GENERATOR_PACKAGE).glob("**/*.py")
    )
    present = [f for f in files if f.is_file()]
    for f in present:
        found = re.search(r"^GENERATOR_VERSION\s*=\s*(.+)$", f.read_text(), flags=re.M)
        if found:
            return "v:" + found.group(1).strip()
    digest = hashlib.sha256()
    for f in present:
        digest.update(f.read_bytes())
    return "sha256:" + digest.hexdigest()[:16]


def generator_available() -> bool:
    return (BASE_DIR / GENERATOR_FILES[1]).is_file()


def _connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _marker(url: str) -> dict | None:
    import psycopg

    try:
        with _connect(url) as conn:
            row = conn.execute(
                f"SELECT size, seed, generator FROM {MARKER_TABLE} "  # noqa: S608 - a constant
                "ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
    except psycopg.Error:
        return None
    return {"size": row[0], "seed": row[1], "generator": row[2]} if row else None


def _write_marker(url: str, marker: dict) -> None:
    with _connect(url) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (size text, seed text, generator text, "
            "created_at timestamptz DEFAULT now())"
        )
        conn.execute(
            f"INSERT INTO {MARKER_TABLE} (size, seed, generator) "  # noqa: S608 - a constant
            "VALUES (%s, %s, %s)",
            (marker["size"], marker["seed"], marker["generator"]),
        )


def _recreate_database(base_url: str, name: str) -> None:
    with _connect(database_url_for(base_url, "postgres")) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _database_exists(base_url: str, name: str) -> bool:
    with _connect(database_url_for(base_url, "postgres")) as conn:
        return bool(
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        )


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": SETTINGS}


def _manage(url: str, *args: str) -> None:
    print(f"  $ manage.py {' '.join(args)}", flush=True)
    subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=_env(url), check=True
    )


def prepare_database(
    base_url: str, size: str, seed: str | None, regenerate: bool
) -> tuple[str, dict]:
    """(URL, facts) of a migrated database holding the portfolio of ``size`` (made if needed)."""
    name = bench_database_name(size)
    url = database_url_for(base_url, name)
    wanted = {"size": size, "seed": seed or "default", "generator": generator_version()}
    if not regenerate and _database_exists(base_url, name) and _marker(url) == wanted:
        print(f"[{size}] reusing {name} ({wanted['generator']})", flush=True)
        _manage(url, "migrate", "--noinput", "--verbosity", "0")
        return url, {"database": name, "reused": True, **wanted}
    print(f"[{size}] generating the portfolio into {name}", flush=True)
    _recreate_database(base_url, name)
    _manage(url, "migrate", "--noinput", "--verbosity", "0")
    start = time.perf_counter()
    _manage(url, "generate_portfolio", "--size", size, *(["--seed", seed] if seed else []))
    seconds = time.perf_counter() - start
    print(f"[{size}] generated in {seconds:.0f} s", flush=True)
    _write_marker(url, wanted)
    return url, {"database": name, "reused": False, "generation_s": seconds, **wanted}


def run_worker(url: str, kind: str, reps: int, size: str) -> dict:
    """One measurement in a fresh process; its JSON result (or the error it died of)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    start = time.perf_counter()
    print(f"[{size}] {kind} ...", end=" ", flush=True)
    done = subprocess.run(  # noqa: S603 - this very script
        [
            sys.executable,
            "-m",
            "bench.run",
            "--worker",
            kind,
            "--reps",
            str(reps),
            "--json-out",
            out,
        ],
        cwd=BASE_DIR,
        env=_env(url),
        check=False,
    )
    try:
        result = json.loads(out.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        result = {}
    finally:
        out.unlink(missing_ok=True)
    if done.returncode and "error" not in result:
        result["error"] = f"worker exited with status {done.returncode}"
    result["wall_s"] = time.perf_counter() - start
    print(f"{result['wall_s']:.1f} s{' ERROR ' + result['error'] if 'error' in result else ''}")
    return result


def machine_info(postgres: str | None) -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import django

    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": postgres,
    }


def run_notes(results: dict, reps: int) -> list[str]:
    """What the table's figures were measured on (bench site and patient, databases)."""
    notes = []
    for size, r in results.items():
        targets = r.get("pages", {}).get("targets", {})
        database = r.get("database", {})
        made = (
            "reused"
            if database.get("reused")
            else f"generated in {database.get('generation_s', 0):.0f} s"
        )
        note = f"{size}: database {database.get('database')} ({made}, generator "
        note += f"{database.get('generator')})"
        if targets:
            note += (
                f"; bench site {targets['site']} ({targets['site_patients']} patients), "
                f"bench patient {targets['patient']}"
            )
        notes.append(note)
    notes.append(
        "Ratios: site, casebook and CRF pages to the 200-row table floor; changelists to the bare "
        "changelist floor. Queries: the most seen in one request of the page."
    )
    loads = [x for r in results.values() for job in r.values() for x in job.get("load", [])]
    if loads:
        notes.append(
            f"Machine load (1-minute average) during the measurements: {min(loads):.1f} to "
            f"{max(loads):.1f} on {os.cpu_count()} cores; other work on the machine skews the "
            "figures (the floors, measured in the same process, absorb part of it)."
        )
    if reps < MIN_REPS:
        notes.append(f"Only {reps} repetitions: issue #9 asks for at least {MIN_REPS}.")
    return notes


def output_paths(out: str | None) -> tuple[Path, Path]:
    path = Path(out) if out else DEFAULT_OUT
    if not path.is_absolute():
        path = BASE_DIR / path
    stem = path.with_suffix("") if path.suffix in (".md", ".json") else path
    return stem.with_suffix(".md"), stem.with_suffix(".json")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: S,L")
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS, help="repetitions (>= 5)")
    parser.add_argument("--regenerate", action="store_true", help="generate the portfolios again")
    parser.add_argument("--seed", default=None, help="generator seed (default: the generator's)")
    parser.add_argument("--out", default=None, help="results path (.md and .json written)")
    parser.add_argument("--only", default=",".join(WORKERS), help="measurements to run")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any FAIL or ERROR")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        from bench.workers import worker_main

        return worker_main(args.worker, args.reps, args.json_out)
    sizes = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    if unknown := [s for s in sizes if s not in SIZES]:
        print(f"unknown sizes: {unknown}", file=sys.stderr)
        return 2
    if not generator_available():
        print("The generator (manage.py generate_portfolio) is missing.", file=sys.stderr)
        return 2
    kinds = [k for k in args.only.split(",") if k in WORKERS]
    base_url = base_database_url()
    results: dict[str, dict] = {}
    for size in sizes:
        url, database = prepare_database(base_url, size, args.seed, args.regenerate)
        results[size] = {"database": database}
        results[size].update({kind: run_worker(url, kind, args.reps, size) for kind in kinds})
    postgres = next((r["pages"].get("postgres") for r in results.values() if "pages" in r), None)
    machine = machine_info(postgres)
    rows = page_rows(results) + job_rows(results)
    table = markdown(rows, machine, args.reps, sizes, run_notes(results, args.reps))
    md_path, json_path = output_paths(args.out)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(table)
    raw = {"machine": machine, "reps": args.reps, "generator": generator_version()}
    json_path.write_text(json.dumps({**raw, "results": results}, indent=1, default=str))
    print()
    print(table)
    print(f"written: {md_path} and {json_path}")
    bad = any(r.result.startswith(("FAIL", "ERROR")) for r in rows)
    return 1 if args.strict and bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
