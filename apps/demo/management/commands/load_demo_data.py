"""Demo data for the embedded default (apps/demo/world.py): a sign-in per role, permit types
and vendors, work planned for today and a month of history. Never in production."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.demo.world import load

DEMO_PASSWORD_ENV = "DEMO_PASSWORD"  # noqa: S105  (the variable's name)
DEFAULT_DEMO_PASSWORD = "demo"  # noqa: S105  (printed by ./dev up: it is no secret)


class Command(BaseCommand):
    help = "Load demo data: a client, two sites, a sign-in per role, a month of work (idempotent)."

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "load_demo_data refuses to run in production (INTELLIWIZ_ENV=production): its "
                "sign-ins share one published password."
            )
        password = os.environ.get(DEMO_PASSWORD_ENV) or DEFAULT_DEMO_PASSWORD
        sign_ins = load(password)
        width = max(len(s.loginid) for s in sign_ins)
        self.stdout.write(f"    sign in as (password: {password}):")
        for sign_in in sign_ins:
            self.stdout.write(f"      {sign_in.loginid:<{width}}  {sign_in.role}, {sign_in.where}")
