import secrets

from django.core.management.base import BaseCommand, CommandError

from apps.mobile.broker_auth import service_user_names
from apps.mobile.models import MobileDevice
from apps.peoples.models import People


class Command(BaseCommand):
    help = "Register a device for a person (or replace its secret) and print the new secret once."

    def add_arguments(self, parser):
        parser.add_argument("loginid")
        parser.add_argument("device_id")

    def handle(self, loginid, device_id, **options):
        if device_id in service_user_names():
            raise CommandError(
                f"{device_id!r} is the MQTT broker's service user: choose another device id"
            )
        person = People.objects.filter(loginid=loginid).first()
        if person is None:
            raise CommandError(f"no person with login id {loginid!r}")
        device, _ = MobileDevice.objects.get_or_create(
            device_id=device_id, defaults={"person": person}
        )
        if device.person_id != person.pk:
            raise CommandError(f"device {device_id!r} belongs to someone else")
        secret = secrets.token_urlsafe(24)
        device.set_secret(secret)
        device.enabled = True
        device.full_clean()
        device.save()
        self.stdout.write(secret)
