"""Who sees and changes what: the one place that decides it.

Every view, form choice, GraphQL resolver, report, API endpoint and admin list asks here,
through each model's ``objects.visible_to(person)`` (which calls ``visible``) and ``can``.

Roles come from the person's row, most powerful first:

- **operator**: a superuser; every client.
- **client admin**: ``is_client_admin``, or a staff person (one who may use the admin) of a
  client; the whole client.
- **site in-charge / supervisor**: designation or work type ``SITEINCHARGE``; their own site and
  the sites of the site groups they supervise.
- **technician**: anyone else; what is assigned to them or to a group they belong to, and what
  they raised, at their client.
- **verifier / approver** is not a role of its own: whoever has an approval step on a permit
  sees that permit and decides that step.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from apps.peoples.services import SITE_IN_CHARGE


class Role(enum.StrEnum):
    OPERATOR = "operator"
    CLIENT_ADMIN = "client admin"
    SITE_IN_CHARGE = "site in-charge"
    TECHNICIAN = "technician"


@dataclass(frozen=True)
class Scope:
    """Where a person's reach ends: their role, client, sites (None: the whole client) and
    groups."""

    role: Role
    person_id: int | None
    client_id: int | None
    site_ids: frozenset[int] | None
    group_ids: frozenset[int]


def role_of(person) -> Role:
    if not getattr(person, "is_authenticated", False):
        return Role.TECHNICIAN
    if person.is_superuser:
        return Role.OPERATOR
    if person.is_client_admin or person.is_staff:
        return Role.CLIENT_ADMIN
    codes = {
        getattr(person.designation, "code", None) if person.designation_id else None,
        getattr(person.work_type, "code", None) if person.work_type_id else None,
    }
    return Role.SITE_IN_CHARGE if SITE_IN_CHARGE in codes else Role.TECHNICIAN


def scope_of(person) -> Scope:
    role = role_of(person)
    if not getattr(person, "is_authenticated", False):
        return Scope(role, None, None, frozenset(), frozenset())
    groups = frozenset(person.memberships.values_list("group_id", flat=True))
    if role in (Role.OPERATOR, Role.CLIENT_ADMIN):
        return Scope(role, person.pk, person.client_id, None, groups)
    sites = {person.site_id} if person.site_id else set()
    if role == Role.SITE_IN_CHARGE:
        sites |= set(
            person.supervised_site_groups.filter(client_id=person.client_id).values_list(
                "sites", flat=True
            )
        )
    return Scope(role, person.pk, person.client_id, frozenset(s for s in sites if s), groups)


def visible(
    queryset: QuerySet,
    person,
    *,
    client: str = "client",
    site: str | None = "site",
    own: Callable[[Scope], Q] | None = None,
) -> QuerySet:
    """`queryset` cut to what `person` may see.

    `client` and `site` name the rows' client and site fields (site None: rows a site in-charge
    sees only as their own); `own(scope)` is what a technician sees: their assignments, what
    they raised.
    """
    scope = scope_of(person)
    if scope.person_id is None:
        return queryset.none()
    if scope.role == Role.OPERATOR:
        return queryset
    if scope.client_id is None:
        return queryset.none()
    queryset = queryset.filter(**{client: scope.client_id})
    if scope.role == Role.CLIENT_ADMIN:
        return queryset
    reach = Q(pk__in=[])
    if site and scope.role == Role.SITE_IN_CHARGE:
        reach |= Q(**{f"{site}__in": scope.site_ids})
    if own is not None:
        reach |= own(scope)
    return queryset.filter(reach).distinct()


def of_their_client(queryset: QuerySet, person, client: str = "client") -> QuerySet:
    """Reference data (permit types, vendors, checklists, people to name) of the person's
    client; an operator's, every client's."""
    scope = scope_of(person)
    if scope.person_id is None:
        return queryset.none()
    if scope.role == Role.OPERATOR:
        return queryset
    return queryset.filter(**{client: scope.client_id})


def requested_by_them(queryset: QuerySet, person, field: str = "requested_by") -> QuerySet:
    """Things a person asked for (reports, PDF jobs): theirs alone; an operator's, all."""
    scope = scope_of(person)
    if scope.role == Role.OPERATOR and scope.person_id is not None:
        return queryset
    return queryset.filter(**{field: scope.person_id}) if scope.person_id else queryset.none()


def visible_sites(person) -> QuerySet:
    """The sites `person` works at or oversees: a technician's own, an in-charge's, a client's."""
    from apps.onboarding.models import BusinessUnit

    sites = BusinessUnit.objects.filter(kind=BusinessUnit.Kind.SITE, enabled=True)
    return visible(sites, person, site="pk", own=lambda scope: Q(pk=person.site_id))


def visible_people(person) -> QuerySet:
    """The people `person` may assign or name: at the sites they reach, or at their client."""
    from apps.peoples.models import People

    active = People.objects.filter(is_active=True)
    return visible(active, person, own=lambda scope: Q(pk=scope.person_id))


def visible_groups(person) -> QuerySet:
    """The people groups `person` may assign to: their client's; a site in-charge's sites' and
    the client-wide ones; a technician's own."""
    from apps.peoples.models import PeopleGroup

    def own(scope: Scope) -> Q:
        mine = Q(pk__in=scope.group_ids)
        return mine | Q(site__isnull=True) if scope.role == Role.SITE_IN_CHARGE else mine

    return visible(PeopleGroup.objects.filter(enabled=True), person, own=own)


def assigned_to(scope: Scope, *, people: str = "people", group: str = "group") -> Q:
    """Rows assigned to the person or to one of their groups."""
    return Q(**{people: scope.person_id}) | Q(**{f"{group}__in": scope.group_ids})


# Actions on objects a person can already see, and who may take them.
MANAGERS = (Role.OPERATOR, Role.CLIENT_ADMIN, Role.SITE_IN_CHARGE)


def can(person, action: str, obj: object | None = None) -> bool:
    """Whether `person` may take `action` (on `obj`, which they can see).

    ``manage``: create and edit jobs, reassign tickets, request site reports, cancel, remind and
    complete other people's permits. ``edit``: change a ticket's status and comments.
    ``requester``: act on a permit as the person who raised it.
    """
    role = role_of(person)
    if action == "manage":
        return role in MANAGERS
    if action == "edit":
        return getattr(person, "is_authenticated", False)
    if action == "permit":
        return role in MANAGERS or getattr(obj, "requested_by_id", None) == person.pk
    raise ValueError(f"unknown action {action!r}")
