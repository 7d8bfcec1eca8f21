"""The lists (issue 23, point 9): /tickets/, /permits/, /jobs/ and /jobs/planned page through
every row a person may see, with filters and a search kept in the URL; each costs the same
number of queries however many rows it holds, for every role."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.activity.models import Identifier, Job, Jobneed
from apps.core.paging import PAGE_SIZE
from apps.work_order_management.models import ApprovalStep, Vendor, WorkPermit
from apps.y_helpdesk.models import Ticket
from tests import factories

pytestmark = pytest.mark.django_db


class World:
    """A client with two sites; a technician, a site in-charge and a client admin at the first,
    an operator; rows made in bulk, some of them the technician's."""

    def __init__(self) -> None:
        self.client, self.site = factories.client_and_site("Asia/Kolkata")
        self.second = type(self.site).objects.create(
            code=f"{self.site.code}-B",
            name="Second Site",
            kind="SITE",
            parent=self.client,
            time_zone="America/New_York",
        )
        self.tech = factories.person(self.site, name="Tara Technician")
        self.in_charge = factories.person(self.site, designation="SITEINCHARGE")
        self.admin = factories.person(self.site, is_client_admin=True)
        self.operator = factories.person(self.site, is_superuser=True, is_staff=True)
        self.team = factories.group(self.site, self.tech)
        hot_work, _ = factories.permit_types(self.client)
        self.permit_type = hot_work
        self.vendor = Vendor.objects.create(
            code=f"V{self.site.pk}", name="Sparks Ltd", email="v@sparks.test", client=self.client
        )
        self.made = 0

    def add(self, count: int) -> None:
        """`count` more of each kind of row, every third one the technician's."""
        now = timezone.now()
        start = self.made
        self.made += count
        sites = [self.site, self.second]
        Ticket.objects.bulk_create(
            Ticket(
                description=f"Leak number {n}",
                site=sites[n % 2],
                client=self.client,
                priority=("LOW", "MEDIUM", "HIGH")[n % 3],
                status=("NEW", "OPEN", "CLOSED", "ONHOLD")[n % 4],
                assigned_people=self.tech if n % 3 == 0 else None,
                assigned_group=self.team if n % 3 == 1 else None,
                created_by=self.in_charge,
            )
            for n in range(start, self.made)
        )
        Ticket.objects.filter(created_at__gte=now).update(created_at=now - timedelta(hours=1))
        permits = WorkPermit.objects.bulk_create(
            WorkPermit(
                permit_type=self.permit_type,
                kind="WP",
                number=n + 1,
                site=sites[n % 2],
                client=self.client,
                vendor=self.vendor,
                status=("PENDING_VERIFICATION", "INPROGRESS", "COMPLETED")[n % 3],
                requested_by=self.tech if n % 3 == 0 else self.in_charge,
            )
            for n in range(start, self.made)
        )
        ApprovalStep.objects.bulk_create(
            ApprovalStep(permit=p, person=self.in_charge, role="VERIFIER") for p in permits
        )
        jobs = Job.objects.bulk_create(
            Job(
                name=f"Job {n:04d}",
                identifier=Identifier.PPM,
                cron="0 9 * * *",
                valid_from=now,
                valid_to=now + timedelta(days=30),
                site=sites[n % 2],
                client=self.client,
                people=self.tech if n % 3 == 0 else None,
                group=self.team if n % 3 == 1 else None,
            )
            for n in range(start, self.made)
        )
        Jobneed.objects.bulk_create(
            Jobneed(
                job=job,
                identifier=Identifier.PPM,
                description=job.name,
                plan_at=now + timedelta(minutes=10 + n),
                expiry_at=now + timedelta(minutes=70 + n),
                site=job.site,
                client=self.client,
                people=job.people,
                group=job.group,
            )
            for n, job in zip(range(start, self.made), jobs, strict=True)
        )


@pytest.fixture
def world() -> World:
    return World()


LISTS = ["/tickets/", "/permits/", "/jobs/", "/jobs/planned"]
ROLES = ["tech", "in_charge", "admin", "operator"]


def browser_of(person) -> Client:
    browser = Client()
    browser.force_login(person)
    return browser


def queries(browser: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = browser.get(path)
    assert response.status_code == 200, path
    return len(captured)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", LISTS)
def test_a_lists_query_count_does_not_grow_with_its_rows(world, path, role) -> None:
    browser = browser_of(getattr(world, role))
    world.add(6)
    few = queries(browser, path)
    world.add(3 * PAGE_SIZE)
    assert queries(browser, path) == few, "a query per row crept in"
    filtered = f"{path}?q=1&site={world.site.pk}&mine=on"
    few_filtered = queries(browser, filtered)
    world.add(PAGE_SIZE)
    assert queries(browser, filtered) == few_filtered


def ids_on(page: str, marker: str) -> list[str]:
    return re.findall(marker, page)


def walk(browser: Client, path: str, marker: str) -> tuple[list[str], list[str]]:
    """Every row's id following the Next links from `path`; the pages' Next links."""
    seen, links, url = [], [], path
    while url:
        page = browser.get(url).content.decode()
        seen += ids_on(page, marker)
        found = re.search(r'href="([^"]+)" rel="next"', page)
        url = unescape(found.group(1)) if found else ""
        links.append(url)
    return seen, links


@pytest.mark.parametrize(
    ("path", "marker", "visible"),
    [
        ("/tickets/", r'href="/tickets/(\d+)"', lambda w: Ticket.objects.visible_to(w.admin)),
        ("/permits/", r'href="/permits/(\d+)"', lambda w: WorkPermit.objects.visible_to(w.admin)),
        ("/jobs/", r'class="card-title"><a href="/jobs/(\d+)"', lambda w: Job.objects.all()),
    ],
)
def test_every_row_is_reached_page_by_page_and_back(world, path, marker, visible) -> None:
    world.add(2 * PAGE_SIZE + 7)
    browser = browser_of(world.admin)
    seen, _ = walk(browser, path, marker)
    assert sorted(map(int, seen)) == sorted(visible(world).values_list("pk", flat=True))
    assert len(seen) == len(set(seen))
    # Back from the last page, Previous shows the same pages in reverse.
    pages, url = [], path
    while url:
        page = browser.get(url).content.decode()
        pages.append(ids_on(page, marker))
        found = re.search(r'href="([^"]+)" rel="next"', page)
        url = unescape(found.group(1)) if found else ""
    backwards = []
    while found := re.search(r'href="([^"]+)" rel="prev"', page):
        page = browser.get(unescape(found.group(1))).content.decode()
        backwards.append(ids_on(page, marker))
    assert backwards[::-1] == pages[:-1] and len(pages) == 3


def test_planned_work_is_paged_by_plan_time_from_today(world) -> None:
    world.add(PAGE_SIZE + 5)
    past = Jobneed.objects.create(
        identifier="TASK",
        description="Done last week",
        plan_at=timezone.now() - timedelta(days=7),
        expiry_at=timezone.now() - timedelta(days=7) + timedelta(hours=1),
        site=world.site,
        client=world.client,
    )
    browser = browser_of(world.admin)
    first = browser.get("/jobs/planned").content.decode()
    assert "Done last week" not in first  # opened plainly: from today on
    titles = r'class="card-title">(?:<a[^>]*>)?([^<]+)<'
    seen, _ = walk(browser, "/jobs/planned?planned_from=", titles)  # every day
    assert seen[0] == past.description and len(seen) == PAGE_SIZE + 6


def test_filters_and_search_are_kept_in_the_url_and_in_the_page_links(world) -> None:
    world.add(3 * PAGE_SIZE)
    browser = browser_of(world.admin)
    url = f"/tickets/?status=open&priority=HIGH&site={world.site.pk}"
    seen, links = walk(browser, url, r'href="/tickets/(\d+)"')
    expected = Ticket.objects.filter(
        status__in=("NEW", "OPEN"), priority="HIGH", site=world.site
    ).values_list("pk", flat=True)
    assert sorted(map(int, seen)) == sorted(expected) and expected
    assert all(f"site={world.site.pk}" in link and "priority=HIGH" in link for link in links[:-1])
    page = browser.get(url).content.decode()
    assert "Filters (3 on)" in page and 'value="HIGH" selected' in page

    searched = browser.get("/tickets/?q=number 7").content.decode()
    assert "Leak number 7<" in searched and "Leak number 8<" not in searched
    number = Ticket.objects.get(description="Leak number 9").pk
    assert "Leak number 9" in browser.get(f"/tickets/?q=%23{number}").content.decode()


def test_my_work_is_what_is_assigned_to_me_or_my_groups(world) -> None:
    world.add(30)
    browser = browser_of(world.in_charge)
    page = browser.get("/tickets/?mine=on").content.decode()
    assert "No ticket matches these filters." in page  # nothing is assigned to the in-charge
    mine = browser_of(world.tech).get("/tickets/?mine=on").content.decode()
    shown = {int(pk) for pk in ids_on(mine, r'href="/tickets/(\d+)"')}
    assert shown == set(
        Ticket.objects.filter(assigned_people=world.tech).values_list("pk", flat=True)
    ) | set(Ticket.objects.filter(assigned_group=world.team).values_list("pk", flat=True))
    steps = browser.get("/permits/?mine=steps").content.decode()
    assert len(ids_on(steps, r'href="/permits/(\d+)"')) == 30  # his steps, at either site


def test_a_date_range_is_read_in_the_persons_time_zone(world) -> None:
    world.add(3)
    day = timezone.localdate(timezone=world.site.tzinfo)
    browser = browser_of(world.admin)  # of the Kolkata site
    inside = browser.get(f"/tickets/?raised_from={day}&raised_to={day}").content.decode()
    outside = browser.get(f"/tickets/?raised_to={day - timedelta(days=2)}").content.decode()
    assert len(ids_on(inside, r'href="/tickets/(\d+)"')) == 3
    assert "No ticket matches these filters." in outside
    assert "in your time zone (Asia/Kolkata)" in inside


def test_a_cursor_that_is_not_ours_shows_the_first_page(world) -> None:
    world.add(5)
    browser = browser_of(world.admin)
    for cursor in ("garbage", "W10", "WyJ4IiwgIjEiXQ"):
        response = browser.get(f"/tickets/?after={cursor}")
        assert response.status_code == 200
        assert len(ids_on(response.content.decode(), r'href="/tickets/(\d+)"')) == 5


def test_managers_filter_tickets_by_whom_they_are_assigned_to(world) -> None:
    world.add(12)
    browser = browser_of(world.in_charge)
    page = browser.get(f"/tickets/?assignee={world.tech.pk}").content.decode()
    shown = {int(pk) for pk in ids_on(page, r'href="/tickets/(\d+)"')}
    assert shown == set(
        Ticket.objects.filter(assigned_people=world.tech).values_list("pk", flat=True)
    )
    assert 'name="assignee"' not in browser_of(world.tech).get("/tickets/").content.decode()


def _grow_ticket(world: World, ticket: Ticket) -> None:
    from apps.y_helpdesk.models import TicketComment, TicketEvent

    at = timezone.now()
    TicketComment.objects.bulk_create(
        TicketComment(ticket=ticket, author=world.in_charge, text=f"Note {n}") for n in range(6)
    )
    TicketEvent.objects.bulk_create(
        TicketEvent(ticket=ticket, at=at, actor=world.in_charge, action="UPDATED") for _ in range(6)
    )


def _grow_job(world: World, job: Job) -> None:
    now = timezone.now()
    Jobneed.objects.bulk_create(
        Jobneed(
            job=job,
            identifier=job.identifier,
            description=job.name,
            plan_at=now + timedelta(days=n - 10, minutes=7),
            expiry_at=now + timedelta(days=n - 10, hours=1),
            site=job.site,
            client=world.client,
            people=job.people,
            group=job.group,
        )
        for n in range(20)
    )


def _grow_permit(world: World, permit: WorkPermit) -> None:
    from apps.work_order_management.models import PermitRemark

    for n in range(4):
        ApprovalStep.objects.create(
            permit=permit, person=factories.person(world.site), role=("VERIFIER", "APPROVER")[n % 2]
        )
    PermitRemark.objects.bulk_create(
        PermitRemark(permit=permit, person=world.in_charge, text=f"Remark {n}") for n in range(5)
    )


def _grow_dashboard(world: World, _: None) -> None:
    for n in range(3):
        type(world.site).objects.create(
            code=f"{world.site.code}-X{n}", name=f"Extra {n}", kind="SITE", parent=world.client
        )


# A page, the row it shows (None: the dashboard) and what grows with it.
PAGES = {
    "ticket": (lambda p: Ticket.objects.visible_to(p).first(), "/tickets/{}", _grow_ticket),
    "job": (
        lambda p: Job.objects.visible_to(p).filter(parent__isnull=True).first(),
        "/jobs/{}",
        _grow_job,
    ),
    "permit": (lambda p: WorkPermit.objects.visible_to(p).first(), "/permits/{}", _grow_permit),
    "dashboard": (lambda p: None, "/dashboard/", _grow_dashboard),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", PAGES)
def test_a_pages_query_count_does_not_grow_with_what_it_shows(world, kind, role) -> None:
    """A ticket's conversation, a job's instances, a permit's steps and remarks, the dashboard's
    sites (read from the cache at once, warm as cache_warming_scheduled keeps it)."""
    person = getattr(world, role)
    browser = browser_of(person)
    world.add(6)
    shown, path, grow = PAGES[kind]
    row = shown(person)
    path = path.format(row.pk if row else "")
    browser.get(path)  # the dashboard's first view fills the cache
    few = queries(browser, path)
    grow(world, row)
    browser.get(path)
    assert queries(browser, path) == few, "a query per row crept in"
