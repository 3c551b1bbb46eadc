"""Benchmark settings (``make bench``): production-like request handling on a bench database.

DEBUG off, cached template loaders, persistent database connections, and the floor pages of
``bench/urls.py`` mounted next to the application's URLs. Emails stay in memory and Celery
messages go to a queue of their own, so a benchmark never mails anyone nor feeds a running
worker. ``DATABASE_URL`` names the bench database (``bench/run.py`` sets it per size).
"""

from __future__ import annotations

import os
import warnings

from config.settings.base import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1", "[::1]"]
ROOT_URLCONF = "bench.urls"

# Cached template loaders (Django's default when DEBUG is off, spelled out here).
TEMPLATES = [
    {
        **TEMPLATES[0],  # noqa: F405
        "APP_DIRS": False,
        "OPTIONS": {
            **TEMPLATES[0]["OPTIONS"],  # noqa: F405
            "loaders": [
                (
                    "django.template.loaders.cached.Loader",
                    [
                        "django.template.loaders.filesystem.Loader",
                        "django.template.loaders.app_directories.Loader",
                    ],
                )
            ],
        },
    }
]

# Persistent connections: one connection for the whole run, as a long-lived worker keeps.
DATABASES["default"]["CONN_MAX_AGE"] = None  # noqa: F405

# No collectstatic needed: {% static %} resolves without a manifest.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# No collectstatic for the bench: WhiteNoise need not warn that staticfiles/ is missing.
warnings.filterwarnings("ignore", message="No directory at")

MAILERS = mailers("django.core.mail.backends.locmem.EmailBackend")  # noqa: F405
CELERY_TASK_DEFAULT_QUEUE = "oligocrf-bench"
# One cache namespace per bench database: S and L never read each other's cached values.
_DB_NAME = DATABASES["default"].get("NAME") or "default"  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = f"oligocrf-bench-{_DB_NAME}"  # noqa: F405
EXPORT_DIR = Path(os.environ.get("BENCH_EXPORT_DIR", str(BASE_DIR / "var" / "bench" / "exports")))  # noqa: F405

LOGGING = {
    **LOGGING,  # noqa: F405
    "root": {"handlers": ["console"], "level": "WARNING"},
}
