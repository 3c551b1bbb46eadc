"""Local development and `make run`: debug on, emails printed on the console."""

from __future__ import annotations

from config.env import env_bool, env_str
from config.settings.base import *  # noqa: F403

DEBUG = env_bool("DEBUG", True)
MAILERS = mailers(env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"))
