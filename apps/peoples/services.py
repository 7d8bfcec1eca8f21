"""Who gets told: site in-charges, client admins and group members, looked up in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Q

from apps.peoples.models import GroupMembership, People

SITE_IN_CHARGE = "SITEINCHARGE"


def site_alert_recipients(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], list[str]]:
    """For each (site id, client id): the e-mails of the site's in-charges and client's admins.

    Two queries whatever the number of pairs. Only verified, enabled people count; admins are
    client admins and people who asked for alert mails.
    """
    pairs = set(pairs)
    sites = {site for site, _ in pairs}
    clients = {client for _, client in pairs}
    active = People.objects.filter(is_active=True, is_verified=True).exclude(email="")
    in_charges: dict[int, list[str]] = defaultdict(list)
    for site_id, email in (
        active.filter(site_id__in=sites)
        .filter(Q(designation__code=SITE_IN_CHARGE) | Q(work_type__code=SITE_IN_CHARGE))
        .values_list("site_id", "email")
    ):
        in_charges[site_id].append(email)
    admins: dict[int, list[str]] = defaultdict(list)
    for client_id, email in (
        active.filter(client_id__in=clients)
        .filter(Q(is_client_admin=True) | Q(receives_alert_mails=True))
        .values_list("client_id", "email")
    ):
        admins[client_id].append(email)
    return {(site, client): in_charges[site] + admins[client] for site, client in pairs}


def group_member_emails(group_ids: Iterable[int | None]) -> dict[int, list[str]]:
    """The e-mails of the enabled members of each group, in one query."""
    members: dict[int, list[str]] = defaultdict(list)
    for group_id, email in GroupMembership.objects.filter(
        group_id__in={g for g in group_ids if g}, people__is_active=True
    ).values_list("group_id", "people__email"):
        members[group_id].append(email)
    return members
