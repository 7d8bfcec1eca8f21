"""The old import path: ``from background_tasks.tasks import X`` gives the same task object as
``background_tasks.<module>.X`` and ``background_tasks.X``.

Celery's autodiscovery imports this module, which registers every task of every domain module.
Modules are imported by full dotted name: the package's lazy ``__getattr__`` resolves through
this module, so a ``from background_tasks import <module>`` here would recurse.
"""

from background_tasks.email_tasks import (
    notify_permit_rejected,
    send_email_notification_for_sla_report,
    send_email_notification_for_sla_vendor,
    send_email_notification_for_vendor_and_security_after_approval,
    send_email_notification_for_vendor_and_security_for_rwp,
    send_email_notification_for_vendor_and_security_of_wp_cancellation,
    send_email_notification_for_workpermit_approval,
    send_email_notification_for_wp,
    send_email_notification_for_wp_from_mobile_for_verifier,
    send_email_notification_for_wp_verifier,
    send_mismatch_notification,
    send_reminder_email,
)
from background_tasks.integration_tasks import (
    external_api_call_async,
    insert_json_records_async,
    process_graphql_download_async,
    process_graphql_mutation_async,
    publish_mqtt,
    validate_mqtt_payload,
    validate_mqtt_topic,
)
from background_tasks.job_tasks import autoclose_job, create_ppm_job, task_every_min
from background_tasks.maintenance_tasks import cache_warming_scheduled, cleanup_expired_pdf_tasks
from background_tasks.media_tasks import (
    move_media_to_cloud_storage,
    perform_facerecognition_bgt,
    process_audio_transcript,
)
from background_tasks.report_tasks import (
    cleanup_reports_which_are_12hrs_old,
    create_report_history,
    create_save_report_async,
    create_scheduled_reports,
    generate_pdf_async,
    send_generated_report_on_mail,
    send_generated_report_onfly_email,
    send_report_on_email,
)
from background_tasks.ticket_tasks import alert_sendmail, send_ticket_email, ticket_escalation

__all__ = [
    "alert_sendmail",
    "autoclose_job",
    "cache_warming_scheduled",
    "cleanup_expired_pdf_tasks",
    "cleanup_reports_which_are_12hrs_old",
    "create_ppm_job",
    "create_report_history",
    "create_save_report_async",
    "create_scheduled_reports",
    "external_api_call_async",
    "generate_pdf_async",
    "insert_json_records_async",
    "move_media_to_cloud_storage",
    "notify_permit_rejected",
    "perform_facerecognition_bgt",
    "process_audio_transcript",
    "process_graphql_download_async",
    "process_graphql_mutation_async",
    "publish_mqtt",
    "send_email_notification_for_sla_report",
    "send_email_notification_for_sla_vendor",
    "send_email_notification_for_vendor_and_security_after_approval",
    "send_email_notification_for_vendor_and_security_for_rwp",
    "send_email_notification_for_vendor_and_security_of_wp_cancellation",
    "send_email_notification_for_workpermit_approval",
    "send_email_notification_for_wp",
    "send_email_notification_for_wp_from_mobile_for_verifier",
    "send_email_notification_for_wp_verifier",
    "send_generated_report_on_mail",
    "send_generated_report_onfly_email",
    "send_mismatch_notification",
    "send_reminder_email",
    "send_report_on_email",
    "send_ticket_email",
    "task_every_min",
    "ticket_escalation",
    "validate_mqtt_payload",
    "validate_mqtt_topic",
]
