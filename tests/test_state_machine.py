"""The Jobneed state machine: people's transitions, the system's auto-close ones, races."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.activity.models import Jobneed
from apps.activity.state_machine import InvalidTransition, allowed, transition
from tests import factories


def test_people_cannot_autoclose_but_the_system_can() -> None:
    assert allowed("ASSIGNED", "INPROGRESS")
    assert not allowed("ASSIGNED", "AUTOCLOSED")
    for status in ("ASSIGNED", "INPROGRESS", "WORKING", "STANDBY", "MAINTENANCE"):
        assert allowed(status, "AUTOCLOSED", by_system=True)
    assert not allowed("COMPLETED", "AUTOCLOSED", by_system=True)
    assert not allowed("AUTOCLOSED", "INPROGRESS", by_system=True)


@pytest.mark.django_db
def test_transition_is_a_compare_and_set() -> None:
    client, site = factories.client_and_site()
    now = timezone.now()
    jobneed = Jobneed.objects.create(
        identifier="TASK",
        description="Patrol",
        plan_at=now,
        expiry_at=now + timedelta(hours=1),
        site=site,
        client=client,
    )
    stale = Jobneed.objects.get(pk=jobneed.pk)
    transition(jobneed, "INPROGRESS")
    assert jobneed.started_at is not None
    with pytest.raises(InvalidTransition, match="from INPROGRESS to WORKING") as error:
        transition(stale, "WORKING")  # stale copy still says ASSIGNED; the row moved on
    assert error.value.current == "INPROGRESS"
    transition(jobneed, "COMPLETED")
    assert Jobneed.objects.get(pk=jobneed.pk).ended_at is not None
    with pytest.raises(InvalidTransition, match="from COMPLETED to AUTOCLOSED"):
        transition(jobneed, "AUTOCLOSED", by_system=True)
