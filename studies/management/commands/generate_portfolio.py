"""Fill an empty database with a synthetic trial portfolio (see studies/portfolio.py)."""

from __future__ import annotations

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from studies.portfolio import DEFAULT_SEED, SIZES, Generator, custom_size


class Command(BaseCommand):
    help = (
        "Generate a synthetic portfolio (size XS, S or L = 10 x S) for scale tests and the "
        "benchmark. Deterministic from --seed and --today. Development databases only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--size", choices=sorted(SIZES), default="S")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument("--today", type=date.fromisoformat, default=None)
        parser.add_argument("--patients", type=int, help="custom size: number of patients")
        parser.add_argument("--sites", type=int, help="custom size: number of sites")
        parser.add_argument("--audit-events", type=int, default=0)

    def handle(self, *args, **options):
        size = SIZES[options["size"]]
        if options["patients"] or options["sites"]:
            size = custom_size(
                options["patients"] or size.patients,
                options["sites"] or size.sites,
                options["audit_events"],
            )
        started = time.perf_counter()
        generator = Generator(
            size, seed=options["seed"], today=options["today"], log=self.stdout.write
        )
        try:
            counts = generator.run()
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        # Fresh statistics for the planner, after the commit (ANALYZE inside a transaction
        # then rolled back, as in tests, would leave row estimates of data that vanished).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        for label, count in sorted(counts.items()):
            self.stdout.write(f"{label:40} {count:>10,}")
        self.stdout.write(f"size {size.name}: done in {time.perf_counter() - started:.1f} s")
