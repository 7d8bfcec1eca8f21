"""The cost limits of apps.mobile.limits on a schema that allows any depth and width."""

from __future__ import annotations

import pytest
from graphql import OperationType, build_schema

from apps.mobile.limits import MAX_DEPTH, MAX_FIELDS, QueryRefused, checked_document

SCHEMA = build_schema("type Query { node: Node } type Node { id: ID child: Node }")
QUERY_ONLY = (OperationType.QUERY,)


def nested(depth: int) -> str:
    return "{ " + "node { " + "child { " * (depth - 2) + "id" + " }" * (depth - 1) + " }"


def test_depth_is_limited() -> None:
    checked_document(SCHEMA, nested(MAX_DEPTH), allowed=QUERY_ONLY)
    with pytest.raises(QueryRefused, match=f"{MAX_DEPTH + 1} levels deep"):
        checked_document(SCHEMA, nested(MAX_DEPTH + 1), allowed=QUERY_ONLY)


def test_fields_reached_through_fragments_are_counted_where_they_are_spread() -> None:
    fields = " ".join(f"f{n}: id" for n in range(15))  # 15 aliased fields per fragment use
    spreads = " ".join(f"c{n}: child {{ ...F }}" for n in range(15))
    query = f"{{ node {{ {spreads} }} }} fragment F on Node {{ {fields} }}"
    with pytest.raises(QueryRefused, match=r"selects \d+ fields \(at most 200\)"):
        checked_document(SCHEMA, query, allowed=QUERY_ONLY)
    assert MAX_FIELDS == 200


def test_the_parser_stops_at_its_token_budget() -> None:
    with pytest.raises(QueryRefused, match="token"):
        checked_document(SCHEMA, "{ node { " + "id " * 2500 + "} }", allowed=QUERY_ONLY)


# --- Bounded answers: rows, bytes, date ranges and stored lengths ----------------------------

JOBNEED_UUIDS = """query($from: DateTime!, $to: DateTime!) {
  myJobneeds(dateFrom: $from, dateTo: $to) { uuid }
}"""


@pytest.fixture
def world(db):
    from tests.test_mobile import mobile_world

    return mobile_world()


def signed_in(person):
    from django.test import Client

    browser = Client()
    browser.force_login(person)
    return browser


def ask(browser, query: str, **variables) -> tuple[int, dict]:
    response = browser.post(
        "/graphql", {"query": query, "variables": variables}, content_type="application/json"
    )
    return response.status_code, response.json()


def around(world, hours: int = 1) -> dict[str, str]:
    from datetime import timedelta

    now = world["now"]
    return {
        "from": (now - timedelta(hours=hours)).isoformat(),
        "to": (now + timedelta(hours=hours)).isoformat(),
    }


def more_jobneeds(world, count: int, **fields) -> None:
    from datetime import timedelta

    from apps.activity.models import Jobneed

    mine = world["mine"]
    Jobneed.objects.bulk_create(
        Jobneed(
            identifier="TASK",
            description=fields.get("description", "Pump check"),
            plan_at=world["now"],
            expiry_at=world["now"] + timedelta(hours=1),
            site=mine.site,
            client=mine.client,
            people=world["person"],
        )
        for _ in range(count)
    )


def test_an_answer_over_its_rows_is_refused_whole_having_read_no_more_than_the_cap(
    world,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.mobile.limits import MAX_ANSWER_ROWS

    more_jobneeds(world, MAX_ANSWER_ROWS - 1)  # with "mine": exactly the cap
    browser = signed_in(world["person"])
    status, answer = ask(browser, JOBNEED_UUIDS, **around(world))
    assert status == 200 and len(answer["data"]["myJobneeds"]) == MAX_ANSWER_ROWS
    more_jobneeds(world, 5000)
    with CaptureQueriesContext(connection) as queries:
        status, answer = ask(browser, JOBNEED_UUIDS, **around(world))
    assert status == 400 and "data" not in answer
    assert answer["errors"] == [
        {
            "message": f"the answer would hold more than {MAX_ANSWER_ROWS} rows (at most "
            f"{MAX_ANSWER_ROWS} rows and 2097152 bytes): ask for less, e.g. a shorter date "
            "range or fewer aliases"
        }
    ]
    selects = [q["sql"] for q in queries.captured_queries if 'FROM "activity_jobneed"' in q["sql"]]
    assert selects and all(sql.endswith(f"LIMIT {MAX_ANSWER_ROWS + 1}") for sql in selects)


def test_an_answer_over_its_bytes_is_refused_whole(world) -> None:
    """The report's answer: a small query, 20 aliases, long texts; refused, not sent."""
    from apps.activity.models import Jobneed, JobneedDetails
    from apps.mobile.limits import MAX_ANSWER_BYTES, MAX_ANSWER_ROWS

    more_jobneeds(world, 30)
    JobneedDetails.objects.bulk_create(
        JobneedDetails(
            jobneed=jobneed, seqno=2, question="Notes", answer_type="MULTILINE", answer="d" * 4000
        )
        for jobneed in Jobneed.objects.filter(people=world["person"])
    )  # 20 x 31 answers of 4,000 characters: ~2.5 MB
    aliases = " ".join(
        f"a{n}: myJobneeds(dateFrom: $from, dateTo: $to) {{ details {{ answer }} }}"
        for n in range(20)
    )
    query = f"query($from: DateTime!, $to: DateTime!) {{ {aliases} }}"
    assert len(query) < 2048 and MAX_ANSWER_ROWS > 20 * 31 * 3
    status, answer = ask(signed_in(world["person"]), query, **around(world))
    assert status == 400 and "data" not in answer
    assert f"more than {MAX_ANSWER_BYTES} bytes" in answer["errors"][0]["message"]
    # One alias of it fits.
    single = query.split(" a1:")[0] + " }"
    status, answer = ask(signed_in(world["person"]), single, **around(world))
    assert status == 200 and len(answer["data"]["a0"]) == 31


def test_the_worker_holds_a_devices_download_to_the_same_budget(world) -> None:
    from apps.mobile.execution import run_download
    from apps.mobile.limits import MAX_ANSWER_ROWS
    from apps.mobile.models import MobileMessage

    more_jobneeds(world, MAX_ANSWER_ROWS + 10)
    message = MobileMessage.objects.create(
        device=world["device"],
        person=world["person"],
        client_id="big-1",
        kind=MobileMessage.Kind.DOWNLOAD,
        query=JOBNEED_UUIDS,
        variables=around(world),
        task_id="t-big-1",
    )
    outcome = run_download(message.pk, progress=lambda percent: None)
    assert outcome["ok"] is False and "download" not in outcome
    assert f"more than {MAX_ANSWER_ROWS} rows" in outcome["errors"][0]


@pytest.mark.parametrize(
    ("hours", "refusal"),
    [(24 * 16, "a date range may span at most 31 days; this one spans 32"), (-1, "after")],
)
def test_my_jobneeds_takes_a_forward_range_of_at_most_a_month(world, hours, refusal) -> None:
    _, answer = ask(signed_in(world["person"]), JOBNEED_UUIDS, **around(world, hours))
    assert refusal in answer["errors"][0]["message"]
    _, answer = ask(signed_in(world["person"]), JOBNEED_UUIDS, **around(world, 24 * 15))
    assert [j["uuid"] for j in answer["data"]["myJobneeds"]] == [str(world["mine"].uuid)]


def test_answers_and_ticket_texts_over_their_stored_length_are_refused_by_name(world) -> None:
    from apps.activity.models import MAX_ANSWER_CHARS
    from apps.y_helpdesk.models import MAX_TICKET_TEXT_CHARS, Ticket

    browser = signed_in(world["person"])
    submit = """mutation($uuid: UUID!, $answers: [AnswerInput!]!) {
      submitJobneedAnswers(jobneedUuid: $uuid, answers: $answers) { alerts } }"""
    too_long = [{"seqno": 1, "answer": "4" * (MAX_ANSWER_CHARS + 1)}]
    _, answer = ask(browser, submit, uuid=str(world["mine"].uuid), answers=too_long)
    assert answer["errors"][0]["message"] == (
        f"the answer to question 1 is {MAX_ANSWER_CHARS + 1} characters long; "
        f"at most {MAX_ANSWER_CHARS} are kept"
    )
    assert world["mine"].details.get().answer == ""
    create = """mutation($text: String!) { createTicket(description: $text) { ticket { id } } }"""
    _, answer = ask(browser, create, text="t" * (MAX_TICKET_TEXT_CHARS + 1))
    assert answer["errors"][0]["message"].startswith(
        f"description is {MAX_TICKET_TEXT_CHARS + 1} characters long"
    )
    assert not Ticket.objects.exists()
    _, answer = ask(browser, create, text="t" * MAX_TICKET_TEXT_CHARS)
    assert answer["data"]["createTicket"]["ticket"]["id"]
