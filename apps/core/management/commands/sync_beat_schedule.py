from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from apps.core.beat import sync_beat_schedule


class Command(BaseCommand):
    help = "Load the declared beat schedule into the database scheduler (missing entries only)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Also put edited entries back to their declared definition.",
        )

    def handle(self, *args: Any, reset: bool = False, **options: Any) -> None:
        report = sync_beat_schedule(reset=reset)
        for outcome, names in report.items():
            for name in names:
                self.stdout.write(f"{outcome}: {name}")
