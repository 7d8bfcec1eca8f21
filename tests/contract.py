"""The task-registry contract (../shared/reference/task-registry.md), as data the tests check.

Each row: module of background_tasks, function, registered name (None for a plain helper).
"""

from __future__ import annotations

REGISTRY: list[tuple[str, str, str | None]] = [
    (
        "email_tasks",
        "send_email_notification_for_workpermit_approval",
        "send_email_notification_for_workpermit_approval",
    ),
    ("email_tasks", "send_email_notification_for_wp", "send_email_notification_for_wp"),
    (
        "email_tasks",
        "send_email_notification_for_wp_verifier",
        "send_email_notification_for_wp_verifier",
    ),
    (
        "email_tasks",
        "send_email_notification_for_wp_from_mobile_for_verifier",
        "send_email_notification_for_wp_from_mobile_for_verifier",
    ),
    (
        "email_tasks",
        "send_email_notification_for_vendor_and_security_of_wp_cancellation",
        "send_email_notification_for_vendor_and_security_of_wp_cancellation",
    ),
    (
        "email_tasks",
        "send_email_notification_for_vendor_and_security_for_rwp",
        "send_email_notification_for_vendor_and_security_for_rwp",
    ),
    (
        "email_tasks",
        "send_email_notification_for_vendor_and_security_after_approval",
        "send_email_notification_for_vendor_and_security_after_approval",
    ),
    (
        "email_tasks",
        "send_email_notification_for_sla_vendor",
        "send_email_notification_for_sla_vendor",
    ),
    (
        "email_tasks",
        "send_email_notification_for_sla_report",
        "send_email_notification_for_sla_report",
    ),
    ("email_tasks", "send_reminder_email", "send_reminder_email"),
    ("email_tasks", "send_mismatch_notification", "send_mismatch_notification"),
    ("job_tasks", "autoclose_job", "auto_close_jobs"),
    ("job_tasks", "create_ppm_job", "create_ppm_job"),
    ("job_tasks", "task_every_min", "task_every_min"),
    ("integration_tasks", "publish_mqtt", "publish_mqtt"),
    ("integration_tasks", "validate_mqtt_topic", None),
    ("integration_tasks", "validate_mqtt_payload", None),
    ("integration_tasks", "process_graphql_mutation_async", "process_graphql_mutation_async"),
    ("integration_tasks", "process_graphql_download_async", "process_graphql_download_async"),
    ("integration_tasks", "external_api_call_async", "external_api_call_async"),
    ("integration_tasks", "insert_json_records_async", "insert_json_records_async"),
    ("media_tasks", "perform_facerecognition_bgt", "perform_facerecognition_bgt"),
    ("media_tasks", "move_media_to_cloud_storage", "move_media_to_cloud_storage"),
    ("media_tasks", "process_audio_transcript", "process_audio_transcript"),
    ("maintenance_tasks", "cache_warming_scheduled", "cache_warming_scheduled"),
    ("maintenance_tasks", "cleanup_expired_pdf_tasks", "cleanup_expired_pdf_tasks"),
    ("ticket_tasks", "send_ticket_email", "send_ticket_email"),
    ("ticket_tasks", "ticket_escalation", "ticket_escalation"),
    ("ticket_tasks", "alert_sendmail", "alert_sendmail"),
    ("report_tasks", "create_report_history", "create_report_history"),
    ("report_tasks", "create_save_report_async", "create_save_report_async"),
    ("report_tasks", "create_scheduled_reports", "create_scheduled_reports"),
    ("report_tasks", "send_report_on_email", "send_report_on_email"),
    ("report_tasks", "send_generated_report_on_mail", "send_generated_report_on_mail"),
    ("report_tasks", "send_generated_report_onfly_email", "send_generated_report_onfly_email"),
    ("report_tasks", "generate_pdf_async", "generate_pdf_async"),
    ("report_tasks", "cleanup_reports_which_are_12hrs_old", "cleanup_reports_which_are_12hrs_old"),
]

# Functions whose domain issue has not landed yet. A domain issue that implements one removes it
# from here; tests/test_registry.py fails while this list and the code disagree either way.
LANDED = {
    "task_every_min",
    # operations
    "create_ppm_job",
    "autoclose_job",
    "send_reminder_email",
    "send_ticket_email",
    "ticket_escalation",
    "alert_sendmail",
    # work permits and SLA
    "send_email_notification_for_workpermit_approval",
    "send_email_notification_for_wp",
    "send_email_notification_for_wp_verifier",
    "send_email_notification_for_wp_from_mobile_for_verifier",
    "send_email_notification_for_vendor_and_security_of_wp_cancellation",
    "send_email_notification_for_vendor_and_security_for_rwp",
    "send_email_notification_for_vendor_and_security_after_approval",
    "send_email_notification_for_sla_vendor",
    "send_email_notification_for_sla_report",
    # integration
    "publish_mqtt",
    "validate_mqtt_topic",
    "validate_mqtt_payload",
    "send_mismatch_notification",
    "external_api_call_async",
    "insert_json_records_async",
    "process_graphql_mutation_async",
    "process_graphql_download_async",
    # media
    "move_media_to_cloud_storage",
    "perform_facerecognition_bgt",
    "process_audio_transcript",
    # reports and maintenance
    "cache_warming_scheduled",
    "generate_pdf_async",
    "cleanup_expired_pdf_tasks",
    "cleanup_reports_which_are_12hrs_old",
    "create_save_report_async",
    "create_report_history",
    "send_report_on_email",
    "create_scheduled_reports",
    "send_generated_report_on_mail",
    "send_generated_report_onfly_email",
}
NOT_YET_IMPLEMENTED: set[str] = {function for _, function, _ in REGISTRY} - LANDED

# Tasks beyond the registry: (module, function, registered name). Their names are namespaced by
# the app that owns them, so they can never collide with a registry name.
EXTRA_TASKS: list[tuple[str, str, str]] = [
    ("email_tasks", "notify_permit_rejected", "work_order_management.notify_permit_rejected"),
]
