"""Upstream's rules as settled in MIGRATING.md: site-group routing of alert recipients, when a
tour is PARTIALLYCOMPLETED, work started on demand, reminders to a job's creator and modifier,
and optional integrations that are not configured (no beat entry fails on the defaults)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.activity.actions import save_job
from apps.activity.models import Jobneed, Reminder
from apps.activity.reminders import send_due_reminders
from apps.activity.state_machine import allowed
from apps.core.models import DeadLetter
from apps.core.offload import offload_media
from apps.onboarding.models import BusinessUnit, SiteGroup
from apps.peoples.services import site_alert_recipients
from apps.y_helpdesk.autoclose import autoclose
from intelliwiz_config.celery import BEAT_SCHEDULE, app
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    client, site = factories.client_and_site("Asia/Kolkata")
    return {"client": client, "site": site, "worker": factories.person(site)}


def jobneed(world, **fields) -> Jobneed:
    return factories.jobneed(
        world["site"], identifier="INTERNALTOUR", people=world["worker"], **fields
    )


# --- Site-group routing -------------------------------------------------------------------------


def test_in_charges_of_a_site_group_holding_the_site_are_told(
    world, django_assert_num_queries
) -> None:
    client, site = world["client"], world["site"]
    other_site = BusinessUnit.objects.create(
        code="S-N2", name="North 2", kind="SITE", parent=client
    )
    north = SiteGroup.objects.create(name="North", client=client)
    north.sites.add(site, other_site)
    own = factories.person(site, designation="SITEINCHARGE", email="own@facility.test")
    supervisor = factories.person(other_site, designation="SITEINCHARGE", email="sup@facility.test")
    supervisor.supervised_site_groups.add(north)
    technician = factories.person(other_site, email="tech@facility.test")
    technician.supervised_site_groups.add(north)  # supervising needs the in-charge role
    stranger_client, stranger_site = factories.client_and_site()
    foreign_group = SiteGroup.objects.create(name="Foreign", client=stranger_client)
    foreign_group.sites.add(site)  # another client's group: it gives its people nothing here
    foreign = factories.person(stranger_site, designation="SITEINCHARGE", email="far@facility.test")
    foreign.supervised_site_groups.add(foreign_group)
    admin = factories.person(site, is_client_admin=True, email="admin@facility.test")

    with django_assert_num_queries(2):
        recipients = site_alert_recipients([(site.pk, client.pk), (other_site.pk, client.pk)])
    assert sorted(recipients[(site.pk, client.pk)]) == sorted(
        [own.email, supervisor.email, admin.email]
    )
    assert sorted(recipients[(other_site.pk, client.pk)]) == sorted([supervisor.email, admin.email])


# --- Auto-close ---------------------------------------------------------------------------------


def test_only_a_tour_in_progress_with_some_but_not_all_checkpoints_done_is_partial(world) -> None:
    def tour(status: str, checkpoints: tuple[str, ...]) -> Jobneed:
        parent = jobneed(world, status=status)
        for seqno, checkpoint in enumerate(checkpoints, start=1):
            jobneed(world, parent=parent, seqno=seqno, status=checkpoint)
        return parent

    partial = tour("INPROGRESS", ("COMPLETED", "ASSIGNED"))
    assigned = tour("ASSIGNED", ("COMPLETED", "ASSIGNED"))
    all_done = tour("INPROGRESS", ("COMPLETED", "COMPLETED"))
    none_done = tour("INPROGRESS", ("ASSIGNED", "ASSIGNED"))
    report = autoclose()
    status = dict(Jobneed.objects.filter(parent__isnull=True).values_list("pk", "status"))
    assert status[partial.pk] == "PARTIALLYCOMPLETED"
    assert status[assigned.pk] == status[all_done.pk] == status[none_done.pk] == "AUTOCLOSED"
    assert (report["partially_completed"], report["closed"]) == (1, 3)
    assert allowed("INPROGRESS", "PARTIALLYCOMPLETED", by_system=True)
    assert not allowed("ASSIGNED", "PARTIALLYCOMPLETED", by_system=True)


def test_work_started_on_demand_is_never_auto_closed(world) -> None:
    dynamic = jobneed(world, job_type=Jobneed.JobType.ADHOC, status="INPROGRESS")
    checkpoint = jobneed(world, job_type=Jobneed.JobType.ADHOC, parent=dynamic, seqno=1)
    planned = jobneed(world)
    autoclose()
    autoclose(jobneed_id=dynamic.pk)
    status = dict(Jobneed.objects.values_list("pk", "status"))
    assert (status[dynamic.pk], status[checkpoint.pk]) == ("INPROGRESS", "ASSIGNED")
    assert status[planned.pk] == "AUTOCLOSED"


# --- Reminders ----------------------------------------------------------------------------------


def test_reminders_also_go_to_the_jobs_creator_and_last_modifier(world, mailoutbox) -> None:
    site = world["site"]
    planner = factories.person(site, email="planner@facility.test")
    editor = factories.person(site, email="editor@facility.test")
    job = factories.job(site, world["worker"])
    save_job(job, created=True, changed=[], by=planner)
    job.description = "Check the belts too"
    save_job(job, created=False, changed=["description"], by=editor)
    job.refresh_from_db()
    assert (job.created_by, job.modified_by) == (planner, editor)
    Reminder.objects.create(
        description="Chiller service",
        job=job,
        site=site,
        due_at=timezone.now() - timedelta(minutes=1),
        people=world["worker"],
    )
    assert send_due_reminders()["sent"] == 1
    (mail,) = mailoutbox
    assert mail.to == [world["worker"].email, "planner@facility.test", "editor@facility.test"]


# --- Optional integrations that are not configured ----------------------------------------------


@pytest.fixture
def default_settings(settings):
    """The embedded defaults of every optional integration: none is configured."""
    settings.MQTT_URL = ""
    settings.NOC_ALERT_EMAILS = []
    settings.PARTNER_API_ALLOWED_HOSTS = []
    settings.STORAGES = {
        name: backend for name, backend in settings.STORAGES.items() if name != "cloud"
    } | {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    return settings


def test_the_media_move_without_a_bucket_is_skipped_visibly(default_settings, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="apps.core.offload"):
        report = offload_media()
    assert report["skipped"] == "MEDIA_CLOUD_BUCKET is not set: there is no bucket to move media to"
    assert report["moved"] == report["candidates"] == 0
    assert 'media_offload_skipped reason="MEDIA_CLOUD_BUCKET is not set' in caplog.text


def test_every_beat_entry_runs_on_the_default_settings(default_settings, world) -> None:
    factories.jobneed(world["site"], ticket_category=factories.lookup("TICKETCATEGORY", "X"))
    outcomes = {}
    for entry in BEAT_SCHEDULE.values():
        result = app.tasks[entry["task"]].apply(kwargs=entry["kwargs"])
        assert result.successful(), (entry["task"], result.result)
        outcomes[entry["task"]] = result.result
    assert outcomes["move_media_to_cloud_storage"]["skipped"].startswith("MEDIA_CLOUD_BUCKET")
    assert not DeadLetter.objects.exists()
