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
  sees that permit and decides that step, and takes no other action on it through the step.

What a person may do to an object is ``can(person, action, obj)``: the role allows the action
and the object is within that role's reach (``within_reach``), or it is their own for the
action (a permit they raised, a ticket assigned to them).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Q, QuerySet

from apps.peoples.services import SITE_IN_CHARGE

Rows = TypeVar("Rows", bound=QuerySet[Any, Any])  # a model's own queryset class is kept


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
    queryset: Rows,
    person,
    *,
    client: str = "client",
    site: str | None = "site",
    own: Callable[[Scope], Q] | None = None,
) -> Rows:
    """`queryset` cut to what `person` may see.

    `client` and `site` name the rows' client and site fields (site None: rows a site in-charge
    sees only as their own); `own(scope)` is what a technician sees: their assignments, what
    they raised. `own` never joins a many-valued relation (a subquery instead), so each row
    comes once without DISTINCT, which would make a list sort every visible row before its
    first page.
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
    return queryset.filter(reach)


def of_their_client(queryset: Rows, person, client: str = "client") -> Rows:
    """Reference data (permit types, vendors, checklists, people to name) of the person's
    client; an operator's, every client's."""
    scope = scope_of(person)
    if scope.person_id is None:
        return queryset.none()
    if scope.role == Role.OPERATOR:
        return queryset
    return queryset.filter(**{client: scope.client_id})


def requested_by_them(queryset: Rows, person, field: str = "requested_by") -> Rows:
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


def people_choices(person) -> QuerySet:
    """`visible_people` as a filter's select box lists them, by name: a client's people are
    many, and a filter needs only the id and the label (name and code)."""
    return visible_people(person).only("pk", "name", "code").order_by("name")


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


def deciders_for(sites: QuerySet) -> QuerySet:
    """Who may verify or approve a permit at one of `sites`: the active people whose reach
    holds the site (those who work there, the in-charges of its site groups, the admins of its
    client). The permit form offers them and the form and API accept no one else."""
    from apps.peoples.models import People

    site_ids = sites.values("pk")
    in_charge = Q(designation__code=SITE_IN_CHARGE) | Q(work_type__code=SITE_IN_CHARGE)
    client_admin = Q(is_client_admin=True) | Q(is_staff=True, is_superuser=False)
    return People.objects.filter(
        Q(site__in=site_ids)
        | (in_charge & Q(supervised_site_groups__sites__in=site_ids))
        | (client_admin & Q(client__in=sites.values("client"))),
        is_active=True,
    ).distinct()


# Actions on objects, and the roles whose reach lets them take one (docs/product.md, the role x
# action table). Outside that reach a person acts only on what is their own for the action (below);
# being named on an approval step gives no action but deciding that step.
MANAGERS = (Role.OPERATOR, Role.CLIENT_ADMIN, Role.SITE_IN_CHARGE)
ACTIONS: dict[str, tuple[Role, ...]] = {
    # plan and edit jobs, reassign tickets, request site reports
    "manage": MANAGERS,
    # change a ticket's status and comments
    "edit": MANAGERS,
    # cancel, remind and submit the return of a permit
    "permit": MANAGERS,
}


def within_reach(person, obj: object) -> bool:
    """Whether `obj` (a row with a site, or a client) lies within the reach of `person`'s role:
    an operator's everything, a client admin's client, a site in-charge's sites, a technician's
    nothing (a technician acts on their own only)."""
    scope = scope_of(person)
    if scope.person_id is None:
        return False
    if scope.role == Role.OPERATOR:
        return True
    site_id = getattr(obj, "site_id", None)
    client_id = getattr(obj, "client_id", None)
    if client_id is None and site_id is not None:
        client_id = obj.site.client_id  # type: ignore[attr-defined]
    if client_id is None or client_id != scope.client_id:
        return False
    if scope.role == Role.CLIENT_ADMIN:
        return True
    return scope.role == Role.SITE_IN_CHARGE and site_id in (scope.site_ids or ())


def _own(scope: Scope, action: str, obj: object) -> bool:
    """What is a person's own for `action` whatever their role: a permit they raised, a ticket
    assigned to them or their group or raised by them."""
    if getattr(obj, "client_id", scope.client_id) != scope.client_id:
        return False
    if action == "permit":
        return getattr(obj, "requested_by_id", None) == scope.person_id
    if action == "edit":
        return (
            getattr(obj, "assigned_people_id", None) == scope.person_id
            or getattr(obj, "created_by_id", None) == scope.person_id
            or getattr(obj, "assigned_group_id", None) in scope.group_ids
        )
    return False


def can(person, action: str, obj: object | None = None) -> bool:
    """Whether `person` may take `action` on `obj` (or, without one, on anything of its kind
    within their reach): their role allows it and `obj` is within that role's reach, or `obj`
    is their own for the action. ``manage``: plan and edit jobs, reassign tickets.
    ``edit``: change a ticket's status and comments. ``permit``: cancel, remind and submit the
    return of a permit."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not getattr(person, "is_authenticated", False):
        return False
    role = role_of(person)
    if obj is None:  # may they take it at all: technicians edit their own, never manage
        return role in ACTIONS[action] or action != "manage"
    if role in ACTIONS[action] and within_reach(person, obj):
        return True
    return _own(scope_of(person), action, obj)
