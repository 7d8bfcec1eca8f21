"""One code per report type: rows recorded under upstream's code of a report type built here
(TASKSUMMARY, from upstream-form history requests) take the type's code (task_summary)."""

from django.db import migrations

# apps.reports.builders.UPSTREAM_REPORT_CODES as of this migration.
UPSTREAM_REPORT_CODES = {
    "TASKSUMMARY": "task_summary",
    "TOURSUMMARY": "tour_summary",
    "PPMSUMMARY": "ppm_compliance",
    "LISTOFTICKETS": "tickets",
}


def one_code_per_report_type(apps, schema_editor):
    for model_name in ("ReportHistory", "GeneratedReport", "ScheduledReport"):
        model = apps.get_model("reports", model_name)
        for upstream, code in UPSTREAM_REPORT_CODES.items():
            model.objects.filter(report_type=upstream).update(report_type=code)


class Migration(migrations.Migration):
    dependencies = [("reports", "0002_reporthistory_scheduledreport_generatedreport")]

    operations = [
        # Nothing to undo: the codes name the same report types.
        migrations.RunPython(one_code_per_report_type, migrations.RunPython.noop),
    ]
