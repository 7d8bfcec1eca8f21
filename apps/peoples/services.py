"""Who gets told: site in-charges, client admins and group members, looked up in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Q

from apps.peoples.models import GroupMembership, People

SITE_IN_CHARGE = "SITEINCHARGE"


def site_alert_recipients(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], list[str]]:
    """For each (site id, client id): the e-mails of the site's in-charges and client's admins.

    A site's in-charges are those of the site and those of its client who supervise a site
    group of that client holding the site (as upstream routed through site groups, and as
    apps.peoples.access gives them the site). Two queries whatever the number of pairs. Only
    verified, enabled people count; admins are client admins and people who asked for alert
    mails.
    """
    pairs = set(pairs)
    sites = {site for site, _ in pairs}
    clients = {client for _, client in pairs}
    active = People.objects.filter(is_active=True, is_verified=True).exclude(email="")
    client_of = dict(pairs)
    in_charges: dict[int, list[str]] = defaultdict(list)
    for email, client_id, own_site, group_client, group_site in (
        active.filter(client_id__in=clients)
        .filter(Q(designation__code=SITE_IN_CHARGE) | Q(work_type__code=SITE_IN_CHARGE))
        .filter(Q(site_id__in=sites) | Q(supervised_site_groups__sites__in=sites))
        .values_list(
            "email",
            "client_id",
            "site_id",
            "supervised_site_groups__client_id",
            "supervised_site_groups__sites",
        )
    ):
        reached = {own_site, group_site if group_client == client_id else None}
        for site_id in sites & reached:
            if client_of[site_id] == client_id and email not in in_charges[site_id]:
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
