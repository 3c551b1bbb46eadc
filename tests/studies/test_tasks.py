"""Celery tasks run by a real worker consuming the real Redis broker."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache

from config.celery import app
from studies.tasks import heartbeat


@pytest.fixture(scope="module")
def celery_worker():
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


def test_a_real_worker_runs_the_heartbeat_through_redis(celery_worker):
    cache.delete("oligocrf:worker-heartbeat")
    result = heartbeat.delay()
    stamp = result.get(timeout=20)
    assert result.successful()
    assert cache.get("oligocrf:worker-heartbeat") == stamp
