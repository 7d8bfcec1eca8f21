"""Core domain: the business-unit tree, time zones, demo data."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apps.onboarding.models import BusinessUnit, SiteGroup, TypeAssist
from apps.peoples.models import GroupMembership, People, PeopleGroup


@pytest.mark.django_db
def test_sites_know_their_client_and_time_zone() -> None:
    client = BusinessUnit.objects.create(code="C", name="Client", kind="CLIENT")
    division = BusinessUnit.objects.create(code="D", name="North", kind="DIVISION", parent=client)
    site = BusinessUnit.objects.create(
        code="S", name="Site", kind="SITE", parent=division, time_zone="Asia/Kolkata"
    )
    assert site.client == client and division.client == client and client.client is None
    assert str(site.tzinfo) == "Asia/Kolkata"
    assert list(BusinessUnit.objects.filter(client=client, kind="SITE")) == [site]


@pytest.mark.django_db
def test_invalid_tree_and_time_zone_are_rejected_with_a_clear_message() -> None:
    site = BusinessUnit(code="S", name="Site", kind="SITE", time_zone="Mars/Olympus")
    with pytest.raises(ValidationError) as error:
        site.full_clean()
    assert "needs a parent" in str(error.value)
    assert "'Mars/Olympus' is not an IANA time zone name" in str(error.value)


@pytest.mark.django_db
def test_demo_data_loads_twice_without_duplicates() -> None:
    call_command("load_demo_data")
    counts = [
        m.objects.count()
        for m in (BusinessUnit, TypeAssist, People, PeopleGroup, GroupMembership, SiteGroup)
    ]
    People.objects.filter(loginid="admin").update(name="Renamed")
    call_command("load_demo_data")
    assert [
        m.objects.count()
        for m in (BusinessUnit, TypeAssist, People, PeopleGroup, GroupMembership, SiteGroup)
    ] == counts
    assert counts[:3] == [3, 13, 8]
    admin = People.objects.get(loginid="admin")
    assert admin.name == "Demo Administrator" and admin.is_superuser
    assert admin.check_password("demo")
    in_charges = People.objects.filter(designation__code="SITEINCHARGE")
    assert sorted(p.site.time_zone for p in in_charges) == ["America/New_York", "Asia/Kolkata"]
    assert in_charges[0].check_password("demo")  # every role can sign in (tests/test_demo.py)
    assert SiteGroup.objects.get().sites.count() == 2


@pytest.mark.django_db
def test_every_admin_page_renders(client, rf) -> None:
    from django.contrib import admin
    from django.urls import reverse

    call_command("load_demo_data")
    operator = People.objects.get(loginid="admin")
    client.force_login(operator)
    request = rf.get("/admin/")
    request.user = operator
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        first = model_admin.get_queryset(request).first()  # a row the admin lists
        if first is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk])
            assert client.get(change).status_code == 200, change
