from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.core.offload import OffloadBusy, offload_media


class Command(BaseCommand):
    help = "Move local media older than the given age to the cloud bucket (as the weekly task)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count, move nothing.")
        parser.add_argument("--older-than-days", type=int, default=None)

    def handle(
        self,
        *args: Any,
        dry_run: bool = False,
        older_than_days: int | None = None,
        **options: Any,
    ) -> None:
        def bar(done: int, total: int) -> None:
            filled = int(30 * done / total) if total else 30
            self.stdout.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}", ending="")
            self.stdout.flush()

        age = timedelta(days=older_than_days) if older_than_days is not None else None
        try:
            report = offload_media(older_than=age, dry_run=dry_run, progress=bar)
        except OffloadBusy as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("")
        for name, value in report.items():
            self.stdout.write(f"{name}: {value}")
