"""create_ppm_job's service: expansion in the site's time zone, idempotence, edits, reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.activity.models import Job, Jobneed, JobneedDetails, Reminder
from apps.activity.ppm import generate_jobneeds, replace_future_instances
from apps.y_helpdesk.models import EscalationMatrix
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return factories.client_and_site("Asia/Kolkata")[1]


def test_expands_cron_in_the_site_time_zone_with_details(site) -> None:
    now = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    job = factories.job(
        site, factories.person(site), now=now, question_set=factories.checklist(site.client)
    )
    report = generate_jobneeds(now=now)
    assert report["instances_created"] == 30  # 09:00 each day of the 30-day horizon
    first = Jobneed.objects.filter(job=job).order_by("plan_at").first()
    assert first.plan_at.astimezone(ZoneInfo("Asia/Kolkata")).hour == 9
    assert first.plan_at == datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
    assert first.expiry_at - first.plan_at == timedelta(minutes=90)
    assert first.details.count() == 2 and first.status == "ASSIGNED"
    job.refresh_from_db()
    assert job.last_generated_at == Jobneed.objects.filter(job=job).latest("plan_at").plan_at


def test_daylight_saving_change_keeps_local_time() -> None:
    _, site = factories.client_and_site("America/New_York")
    now = datetime(2026, 3, 5, 0, 0, tzinfo=UTC)  # DST starts on 2026-03-08 in New York
    job = factories.job(site, factories.person(site), now=now)
    generate_jobneeds(job_id=job.pk, now=now)
    utc_hours = {
        jn.plan_at.date().isoformat(): jn.plan_at.astimezone(UTC).hour
        for jn in Jobneed.objects.filter(job=job)
    }
    assert utc_hours["2026-03-07"] == 14  # 09:00 EST
    assert utc_hours["2026-03-09"] == 13  # 09:00 EDT


def test_rerun_and_double_beat_create_nothing_twice(site) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    job = factories.job(
        site, factories.person(site), now=now, question_set=factories.checklist(site.client)
    )
    generate_jobneeds(now=now)
    counts = (Jobneed.objects.count(), JobneedDetails.objects.count())
    Job.objects.filter(pk=job.pk).update(last_generated_at=None)  # a second beat that raced
    assert generate_jobneeds(now=now)["instances_created"] == 0
    assert (Jobneed.objects.count(), JobneedDetails.objects.count()) == counts


def test_bad_cron_is_reported_and_the_other_jobs_still_run(site) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assignee = factories.person(site)
    broken = factories.job(site, assignee, now=now)
    Job.objects.filter(pk=broken.pk).update(cron="61 25 * * *")
    good = factories.job(site, assignee, now=now)
    report = generate_jobneeds(now=now)
    assert report["failed"] == [{"job_id": broken.pk, "error": report["failed"][0]["error"]}]
    assert "bad cron '61 25 * * *'" in report["failed"][0]["error"]
    assert Jobneed.objects.filter(job=good).count() == 30
    assert not Jobneed.objects.filter(job=broken).exists()


def test_edited_job_replaces_future_untouched_instances(site) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    job = factories.job(site, factories.person(site), now=now)
    generate_jobneeds(now=now)
    touched = Jobneed.objects.filter(job=job).order_by("plan_at")[3]
    Jobneed.objects.filter(pk=touched.pk).update(status="INPROGRESS", started_at=now)

    Job.objects.filter(pk=job.pk).update(cron="30 18 * * *")
    job.refresh_from_db()
    replace_future_instances(job, now=now)
    generate_jobneeds(job_id=job.pk, now=now)
    local_hours = {
        (jn.plan_at.astimezone(ZoneInfo("Asia/Kolkata")).hour, jn.status)
        for jn in Jobneed.objects.filter(job=job)
    }
    assert local_hours == {(18, "ASSIGNED"), (9, "INPROGRESS")}


def test_reminders_come_from_the_job_rules_once(site) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    job = factories.job(site, factories.person(site), now=now)
    EscalationMatrix.objects.create(
        client=site.client,
        job=job,
        level=1,
        frequency="HOUR",
        frequency_value=2,
        notify_email="ops@facility.test",
    )
    generate_jobneeds(now=now)
    generate_jobneeds(job_id=job.pk, now=now)
    assert Reminder.objects.count() == 30
    reminder = Reminder.objects.order_by("due_at").first()
    assert reminder.plan_at - reminder.due_at == timedelta(hours=2)
    assert reminder.extra_emails == "ops@facility.test"


def test_tours_get_checkpoints_with_their_checklists(site) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assignee = factories.person(site)
    qset = factories.checklist(site.client)
    tour = factories.job(site, assignee, now=now, identifier="INTERNALTOUR", cron="0 22 * * *")
    for seqno in (1, 2, 3):
        Job.objects.create(
            name=f"Checkpoint {seqno}",
            identifier="INTERNALTOUR",
            parent=tour,
            seqno=seqno,
            site=site,
            question_set=qset,
            valid_from=tour.valid_from,
            valid_to=tour.valid_to,
        )
    generate_jobneeds(job_id=tour.pk, now=now)
    generate_jobneeds(job_id=tour.pk, now=now)
    parents = Jobneed.objects.filter(job=tour, parent__isnull=True)
    assert parents.count() == 30
    assert Jobneed.objects.filter(parent__in=parents).count() == 90
    assert JobneedDetails.objects.filter(jobneed__parent__in=parents).count() == 180
