"""Every task's soft time limit covers the external waits it can run into.

A task that can wait longer on a service than its soft limit is cut off mid-call: the call's
own timeout never fires, nothing records why, and the retry starts the same wait again. So for
each registered task the soft limit must exceed the sum of the worst single wait on each
service it calls (connect, retries of the client and reads included). Loops over many calls
are bounded differently (the bulk tasks stop at their soft limit and record what they did).
"""

from __future__ import annotations

import paho.mqtt.client as paho
import pytest
from botocore.config import Config
from celery import Task
from django.conf import settings

import background_tasks.tasks  # noqa: F401  (registers every task)
from apps.integrations import partner_api
from intelliwiz_config.celery import app


def smtp_wait() -> float:
    return float(settings.EMAIL_TIMEOUT)


def partner_wait() -> float:
    return float(partner_api.MAX_TIMEOUT)


def transcription_wait() -> float:
    return float(settings.TRANSCRIPTION_TIMEOUT_SECONDS)


def mqtt_wait() -> float:
    # publish(): up to two attempts (a dropped connection is retried once on a fresh one),
    # each a socket connect, a wait for CONNACK and a wait for the acknowledgement.
    connect = paho.Client(paho.CallbackAPIVersion.VERSION2).connect_timeout
    return 2 * (connect + 2 * settings.MQTT_ACK_TIMEOUT_SECONDS)


def s3_wait() -> float:
    # One storage operation: every attempt botocore makes, each a connect and a read (without
    # a client config: botocore's defaults, 60 s each and five attempts).
    config = getattr(settings, "AWS_S3_CLIENT_CONFIG", None) or Config()
    attempts = (config.retries or {}).get("total_max_attempts", 5)
    return attempts * ((config.connect_timeout or 60) + (config.read_timeout or 60))


SMTP, PARTNER, TRANSCRIPTION, MQTT, S3 = (
    smtp_wait,
    partner_wait,
    transcription_wait,
    mqtt_wait,
    s3_wait,
)

# The services each registered task waits on (storage counts as S3: it is in production).
WAITS_ON = {
    "alert_sendmail": (S3, SMTP),  # attachments, then the mail
    "auto_close_jobs": (SMTP,),
    "cache_warming_scheduled": (),
    "cleanup_expired_pdf_tasks": (S3,),
    "cleanup_reports_which_are_12hrs_old": (S3,),
    "create_ppm_job": (),
    "create_report_history": (),
    "create_save_report_async": (S3, SMTP),
    "create_scheduled_reports": (S3,),
    "external_api_call_async": (PARTNER,),
    "generate_pdf_async": (S3,),
    "insert_json_records_async": (),
    "move_media_to_cloud_storage": (S3,),
    "perform_facerecognition_bgt": (S3,),
    "process_audio_transcript": (S3, TRANSCRIPTION),
    "process_graphql_download_async": (S3,),
    "process_graphql_mutation_async": (),
    "publish_mqtt": (MQTT,),
    "send_email_notification_for_sla_report": (S3, SMTP),
    "send_email_notification_for_sla_vendor": (S3, SMTP),
    "send_email_notification_for_vendor_and_security_after_approval": (S3, SMTP),
    "send_email_notification_for_vendor_and_security_for_rwp": (S3, SMTP),
    "send_email_notification_for_vendor_and_security_of_wp_cancellation": (S3, SMTP),
    "send_email_notification_for_workpermit_approval": (S3, SMTP),
    "send_email_notification_for_wp": (S3, SMTP),
    "send_email_notification_for_wp_from_mobile_for_verifier": (S3, SMTP),
    "send_email_notification_for_wp_verifier": (S3, SMTP),
    "send_generated_report_on_mail": (S3, SMTP),
    "send_generated_report_onfly_email": (S3, SMTP),
    "send_mismatch_notification": (MQTT, SMTP),
    "send_reminder_email": (SMTP,),
    "send_report_on_email": (SMTP,),
    "send_ticket_email": (SMTP,),
    "task_every_min": (),
    "ticket_escalation": (SMTP,),
    "work_order_management.notify_permit_rejected": (SMTP,),
}


def project_tasks() -> dict[str, Task]:
    """The project's tasks (not Celery's own, nor those test modules register)."""
    return {
        name: task
        for name, task in app.tasks.items()
        if task.__module__.startswith("background_tasks.")
    }


def test_every_registered_task_says_what_it_waits_on() -> None:
    assert sorted(project_tasks()) == sorted(WAITS_ON)


@pytest.mark.parametrize("name", sorted(WAITS_ON))
def test_the_soft_limit_covers_the_external_waits(name: str) -> None:
    task = project_tasks()[name]
    waits = {wait.__name__: wait() for wait in WAITS_ON[name]}
    assert task.soft_time_limit > sum(waits.values()), waits
    assert task.soft_time_limit < task.time_limit


@pytest.mark.django_db
def test_a_partner_call_gets_no_longer_than_its_task_can_wait(monkeypatch) -> None:
    from background_tasks import integration_tasks

    given: list[float] = []

    def call_partner(url, method, headers, data, timeout, credentials, **_) -> dict[str, object]:
        given.append(timeout)
        return {"status": 200}

    monkeypatch.setattr(integration_tasks, "call_partner", call_partner)
    task = integration_tasks.external_api_call_async
    task.apply(kwargs={"url": "https://partner.example/x", "timeout": 10_000}).get()
    assert 0 < given[0] <= partner_api.MAX_TIMEOUT
    assert given[0] < task.soft_time_limit
