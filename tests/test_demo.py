"""The demo a newcomer meets after `./dev up` (issue 23, point 1): a sign-in per role with
the printed password, each landing on work of its own; work planned for today; every report
with rows; permit types, vendors and a decision waiting for the verifier. Never in production."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from apps.onboarding.models import BusinessUnit
from apps.peoples.models import People
from apps.reports.builders import REPORT_TYPES, build
from apps.work_order_management.models import PermitType, Vendor, WorkPermit

pytestmark = pytest.mark.django_db

ROLES = {
    "admin": "operator",
    "clientadmin": "client admin",
    "incharge.mum": "site in-charge",
    "incharge.nyc": "site in-charge",
    "tech.mum": "technician",
    "tech.nyc": "technician",
    "verifier": "verifier",
    "approver": "approver",
}


@pytest.fixture
def printed(monkeypatch) -> str:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("load_demo_data", stdout=out)
    return out.getvalue()


def signed_in_through_the_form(loginid: str, password: str) -> Client:
    browser = Client()
    response = browser.post("/accounts/login/", {"username": loginid, "password": password})
    assert response.status_code == 302, f"{loginid} could not sign in"
    return browser


def test_the_printed_list_names_a_sign_in_per_role_with_its_password(printed) -> None:
    assert "password: demo" in printed
    for loginid, role in ROLES.items():
        line = next(line for line in printed.splitlines() if line.split()[:1] == [loginid])
        assert role in line, line


def test_every_printed_sign_in_works_and_lands_on_its_work(printed) -> None:
    landings = {}
    for loginid in ROLES:
        browser = signed_in_through_the_form(loginid, "demo")
        landing = browser.get("/", follow=True)
        assert landing.status_code == 200, loginid
        landings[loginid] = landing.request["PATH_INFO"]
        for path in ("/dashboard/", "/tickets/", "/jobs/", "/permits/", "/reports/"):
            assert browser.get(path).status_code == 200, (loginid, path)
    assert landings["verifier"] == "/permits/"  # a decision waits for the verifier
    assert landings["tech.mum"] == "/tickets/"
    assert landings["incharge.mum"] == "/dashboard/"


def test_a_second_load_keeps_a_changed_password_and_duplicates_nothing(printed) -> None:
    person = People.objects.get(loginid="tech.mum")
    person.set_password("changed-by-tanvi")
    person.save()
    counts = [WorkPermit.objects.count(), People.objects.count()]
    call_command("load_demo_data", stdout=io.StringIO())
    assert [WorkPermit.objects.count(), People.objects.count()] == counts
    signed_in_through_the_form("tech.mum", "changed-by-tanvi")


def test_an_older_demo_person_without_a_password_gets_the_demo_one(printed) -> None:
    person = People.objects.get(loginid="incharge.nyc")
    person.set_unusable_password()
    person.save()
    call_command("load_demo_data", stdout=io.StringIO())
    signed_in_through_the_form("incharge.nyc", "demo")


def test_each_site_has_work_planned_today(printed) -> None:
    browser = signed_in_through_the_form("clientadmin", "demo")
    page = browser.get("/dashboard/").content.decode()
    assert "None planned today" not in page
    assert page.count('class="site-board"') == 2


def test_every_report_has_rows_for_each_site(printed) -> None:
    for site in BusinessUnit.objects.filter(kind="SITE"):
        today = timezone.localtime(timezone.now(), site.tzinfo).date()
        for report_type in REPORT_TYPES:
            data = build(report_type, site, today - timedelta(days=28), today)
            assert data.rows, (site.code, report_type)


def test_permit_types_and_vendors_are_ready_to_use(printed) -> None:
    assert {t.kind for t in PermitType.objects.all()} == {"WP", "SLA"}
    assert Vendor.objects.count() >= 2
    browser = signed_in_through_the_form("incharge.mum", "demo")
    choices = browser.get("/permits/new").content.decode()
    assert "Hot Work Permit" in choices and "Vendor performance report" in choices
    permit = WorkPermit.objects.get()
    assert permit.status == "PENDING_VERIFICATION"
    assert permit.steps.get(role="VERIFIER").person.loginid == "verifier"


def test_demo_data_is_refused_in_production(settings) -> None:
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="refuses to run in production"):
        call_command("load_demo_data", stdout=io.StringIO())
    assert not People.objects.exists()
