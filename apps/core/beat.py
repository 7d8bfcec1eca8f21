"""Load the beat schedule declared in intelliwiz_config.celery into django-celery-beat's tables.

Entries are created when missing and left alone when present, so an operator's edits in the
admin survive restarts and deploys; ``--reset`` puts the declared definitions back. Entries
whose task is not registered yet are skipped, so beat never sends an unknown name.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery.schedules import crontab
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

logger = logging.getLogger(__name__)


def _crontab_row(schedule: crontab) -> CrontabSchedule:
    row = CrontabSchedule.from_schedule(schedule)
    if row.pk is None:
        row.save()
    return row


def sync_beat_schedule(*, reset: bool = False) -> dict[str, list[str]]:
    from intelliwiz_config.celery import BEAT_SCHEDULE, app

    app.loader.import_default_modules()
    report: dict[str, list[str]] = {"created": [], "reset": [], "kept": [], "skipped": []}
    with transaction.atomic():
        for name, entry in BEAT_SCHEDULE.items():
            if entry["task"] not in app.tasks:
                report["skipped"].append(name)
                continue
            options: dict[str, Any] = entry["options"]
            defaults = {
                "task": entry["task"],
                "crontab": _crontab_row(entry["schedule"]),
                "interval": None,
                "queue": options["queue"],
                "expire_seconds": options["expires"],
                "args": "[]",
                "kwargs": json.dumps(entry.get("kwargs", {})),
                "enabled": True,
            }
            existing = PeriodicTask.objects.filter(name=name).first()
            if existing is None:
                PeriodicTask.objects.create(name=name, **defaults)
                report["created"].append(name)
            elif reset:
                for field, value in defaults.items():
                    setattr(existing, field, value)
                existing.save()
                report["reset"].append(name)
            else:
                report["kept"].append(name)
    return report


def install_beat_schedule_after_migrate(**kwargs: Any) -> None:
    report = sync_beat_schedule()
    if report["created"]:
        logger.info("beat schedule: created %s", ", ".join(report["created"]))
