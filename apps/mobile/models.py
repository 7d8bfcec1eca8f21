from __future__ import annotations

import base64
import hashlib
import hmac
import os

from django.contrib.auth.hashers import check_password
from django.core.validators import RegexValidator
from django.db import models

from apps.peoples.models import People

device_id_validator = RegexValidator(r"^[A-Za-z0-9_-]{3,64}$", "3 to 64 letters, digits, - or _")
_DIGEST = "sha256$"
MOSQUITTO_ITERATIONS = 101  # what mosquitto_passwd writes for $7$


def secret_digest(secret: str) -> str:
    """How a device secret is stored: it is random (192 bits from issue_device_secret), so a
    plain SHA-256 resists guessing, and checking it is fast and takes the same time always."""
    return _DIGEST + hashlib.sha256(secret.encode()).hexdigest()


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """How the MQTT broker checks the same secret (apps.mobile.broker_auth): hashed as
    mosquitto_passwd does, $7$<iterations>$<salt>$<PBKDF2-SHA512>."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS, 64)
    encode = base64.b64encode
    return f"$7${MOSQUITTO_ITERATIONS}${encode(salt).decode()}${encode(digest).decode()}"


class MobileDevice(models.Model):
    """A phone of one person; it authenticates with its own secret, stored as a digest."""

    device_id = models.CharField(max_length=64, unique=True, validators=[device_id_validator])
    person = models.ForeignKey(People, on_delete=models.CASCADE, related_name="devices")
    secret_hash = models.CharField(max_length=256, editable=False)
    # The same secret as the MQTT broker checks it (Mosquitto's $7$ format): see broker_auth.
    broker_password_hash = models.CharField(max_length=200, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["device_id"]

    def __str__(self) -> str:
        return f"{self.device_id} ({self.person})"

    def set_secret(self, secret: str) -> None:
        self.secret_hash = secret_digest(secret)
        self.broker_password_hash = mosquitto_hash(secret)

    def check_secret(self, secret: str) -> bool:
        if not self.secret_hash.startswith(_DIGEST):
            # Issued before digests: Django's (slow) password hash, replaced on first success.
            if not (secret and check_password(secret, self.secret_hash)):
                return False
            self.set_secret(secret)
            MobileDevice.objects.filter(pk=self.pk).update(
                secret_hash=self.secret_hash, broker_password_hash=self.broker_password_hash
            )
            return True
        return hmac.compare_digest(secret_digest(secret), self.secret_hash)


class MobileMessage(models.Model):
    """One request of a device, by its client id: run once, its result kept for resends."""

    class Kind(models.TextChoices):
        MUTATION = "mutation", "Mutation"
        DOWNLOAD = "download", "Download"

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    device = models.ForeignKey(MobileDevice, on_delete=models.CASCADE, related_name="messages")
    person = models.ForeignKey(People, on_delete=models.CASCADE, related_name="+")
    client_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    query = models.TextField()
    variables = models.JSONField(default=dict, blank=True)
    task_id = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "client_id"], name="message_once_per_client_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.device_id}:{self.client_id} {self.status}"
