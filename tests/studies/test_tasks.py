"""Celery tasks run by a real worker consuming the real Redis broker."""

from __future__ import annotations

from django.core.cache import cache

from studies.tasks import heartbeat


def test_a_real_worker_runs_the_heartbeat_through_redis(celery_worker):
    cache.delete("oligocrf:worker-heartbeat")
    result = heartbeat.delay()
    stamp = result.get(timeout=20)
    assert result.successful()
    assert cache.get("oligocrf:worker-heartbeat") == stamp
