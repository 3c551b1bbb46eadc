"""Celery tasks of the studies app."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone


@shared_task(acks_late=True)
def heartbeat() -> str:
    """Beat sends this every 5 minutes; the answer proves a worker is consuming the queue."""
    now = timezone.now().isoformat()
    cache.set("oligocrf:worker-heartbeat", now, timeout=None)
    return now
