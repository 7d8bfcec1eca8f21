"""The one place that says which Jobneed status changes are allowed.

People move work along USER_TRANSITIONS. The system may also close unfinished work that has
expired: AUTOCLOSED, or PARTIALLYCOMPLETED for a tour in progress with some but not all of its
checkpoints done (upstream's rule). Work started on demand (job type ADHOC, upstream's dynamic
tours) has no planned window to miss and is never closed by the system.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.activity.models import TOURS, Jobneed, JobneedStatus

S = JobneedStatus

USER_TRANSITIONS: dict[str, frozenset[str]] = {
    S.ASSIGNED: frozenset({S.INPROGRESS, S.WORKING, S.STANDBY}),
    S.INPROGRESS: frozenset({S.WORKING, S.COMPLETED, S.PARTIALLYCOMPLETED, S.STANDBY, S.ASSIGNED}),
    S.WORKING: frozenset(
        {S.INPROGRESS, S.COMPLETED, S.PARTIALLYCOMPLETED, S.STANDBY, S.MAINTENANCE}
    ),
    S.STANDBY: frozenset({S.INPROGRESS, S.WORKING, S.ASSIGNED}),
    S.MAINTENANCE: frozenset({S.WORKING, S.INPROGRESS}),
    S.PARTIALLYCOMPLETED: frozenset({S.INPROGRESS, S.WORKING, S.COMPLETED}),
    S.COMPLETED: frozenset({S.INPROGRESS}),
    S.AUTOCLOSED: frozenset(),
}

# Unfinished states the system closes when the work expires.
AUTOCLOSABLE: frozenset[str] = frozenset(
    {S.ASSIGNED, S.INPROGRESS, S.WORKING, S.STANDBY, S.MAINTENANCE}
)
SYSTEM_TRANSITIONS: dict[str, frozenset[str]] = {
    **{status: frozenset({S.AUTOCLOSED}) for status in AUTOCLOSABLE},
    S.INPROGRESS: frozenset({S.AUTOCLOSED, S.PARTIALLYCOMPLETED}),
}


class InvalidTransition(Exception):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(current, target)
        self.current, self.target = current, target

    def __str__(self) -> str:
        return f"a Jobneed cannot move from {self.current} to {self.target}"


def allowed(current: str, target: str, *, by_system: bool = False) -> bool:
    if target in USER_TRANSITIONS.get(current, ()):
        return True
    return by_system and target in SYSTEM_TRANSITIONS.get(current, ())


def transition(jobneed: Jobneed, target: str, *, by_system: bool = False, **fields) -> None:
    """Move one Jobneed, atomically against concurrent changes (compare-and-set on status)."""
    if not allowed(jobneed.status, target, by_system=by_system):
        raise InvalidTransition(jobneed.status, target)
    now = timezone.now()
    if target in (S.COMPLETED, S.PARTIALLYCOMPLETED) and jobneed.ended_at is None:
        fields.setdefault("ended_at", now)
    if target in (S.INPROGRESS, S.WORKING) and jobneed.started_at is None:
        fields.setdefault("started_at", now)
    updated = Jobneed.objects.filter(pk=jobneed.pk, status=jobneed.status).update(
        status=target, modified_at=now, **fields
    )
    if not updated:
        current = Jobneed.objects.values_list("status", flat=True).get(pk=jobneed.pk)
        raise InvalidTransition(current, target)
    jobneed.status = target
    for name, value in fields.items():
        setattr(jobneed, name, value)


def autoclosable(queryset: models.QuerySet[Jobneed]) -> models.QuerySet[Jobneed]:
    """The rows of `queryset` that the system may close (set-based form of SYSTEM_TRANSITIONS)."""
    return queryset.filter(status__in=AUTOCLOSABLE, autoclosed_at__isnull=True).exclude(
        job_type=Jobneed.JobType.ADHOC
    )


def partially_completable(queryset: models.QuerySet[Jobneed]) -> models.QuerySet[Jobneed]:
    """The tours of `queryset` the system closes as PARTIALLYCOMPLETED rather than AUTOCLOSED:
    in progress, with at least one checkpoint completed and at least one not."""
    checkpoints = Jobneed.objects.filter(parent=models.OuterRef("pk"))
    done = checkpoints.filter(status=S.COMPLETED)
    return queryset.filter(identifier__in=TOURS, status=S.INPROGRESS).filter(
        models.Exists(done), models.Exists(checkpoints.exclude(status=S.COMPLETED))
    )
