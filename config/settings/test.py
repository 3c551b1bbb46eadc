"""Test settings: the real PostgreSQL and Redis (configured or embedded), emails kept in memory."""

from __future__ import annotations

import os
import warnings

from config.settings.base import *  # noqa: F403

DEBUG = False
MAILERS = mailers("django.core.mail.backends.locmem.EmailBackend")
# Hashing with Argon2 costs ~50 ms per password; the production hasher is checked by its own test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Static files are served from the finders in tests (no collectstatic run needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")

# Parallel test runs against one server need distinct test databases (TEST_DATABASE_NAME).
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}

# Keep test tasks and cache keys apart from a `make run` sharing the same Redis.
CELERY_TASK_DEFAULT_QUEUE = f"oligocrf-test-{os.getpid()}"
CACHES["default"]["KEY_PREFIX"] = f"oligocrf-test-{os.getpid()}"
