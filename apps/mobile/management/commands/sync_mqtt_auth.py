"""Write Mosquitto's password and ACL files from the device table (see apps.mobile.broker_auth).

manage.py sync_mqtt_auth --password-file auth/passwords --acl-file auth/acl
manage.py sync_mqtt_auth ... --every 30      # keep them in step (docker-compose.yml does)
manage.py sync_mqtt_auth ... --reload-pid 123  # and tell a local Mosquitto to read them
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from django.core.management.base import BaseCommand

from apps.mobile.broker_auth import write_broker_files


class Command(BaseCommand):
    help = "Write Mosquitto's password and ACL files from the enabled devices and service users."

    def add_arguments(self, parser):
        parser.add_argument("--password-file", type=Path, required=True)
        parser.add_argument("--acl-file", type=Path, required=True)
        parser.add_argument("--reload-pid", type=int, help="send SIGHUP to this Mosquitto after")
        parser.add_argument("--every", type=float, help="rewrite every so many seconds, forever")

    def handle(self, *args, password_file, acl_file, reload_pid, every, **options):
        while True:
            users = write_broker_files(password_file, acl_file)
            if reload_pid:
                os.kill(reload_pid, signal.SIGHUP)
            self.stdout.write(f"sync_mqtt_auth: {users} broker users written")
            if not every:
                return
            time.sleep(every)
