"""The permit form as a phone meets it (issue 23, point 6): a dropdown question is a select box
of its options, verifiers and approvers are boxes to tick (no Ctrl-click), and when one of two
verifiers rejects, the other is told that their decision is no longer needed."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.activity.models import Question
from apps.work_order_management import actions
from apps.work_order_management.notifications import notify_rejection
from apps.work_order_management.services import PermitError
from tests.test_permits import new_permit, permit_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = permit_world()
    section = world["hot_work"].sections.get(seqno=1)
    question = Question.objects.get(question_set=section.question_set, seqno=2)
    question.options = "Yes,No"
    question.save()
    world["verifier2"] = type(world["verifier"]).objects.create_user(
        "verifier2",
        None,
        name="Second Verifier",
        email="verifier2@facility.test",
        client=world["site"].client,
        site=world["site"],
    )
    return world


def form_page(world) -> str:
    browser = Client()
    browser.force_login(world["requester"])
    return browser.get(f"/permits/new?type={world['hot_work'].pk}").content.decode()


def test_a_dropdown_question_is_a_select_box_of_its_options(world) -> None:
    page = form_page(world)
    select = page[page.index('<select name="a-1-2"') :].split("</select>")[0]
    assert '<option value="Yes">Yes</option>' in select
    assert '<option value="No">No</option>' in select
    assert 'name="a-1-1"' in page and '<select name="a-1-1"' not in page  # free text stays


def test_verifiers_and_approvers_are_boxes_to_tick(world) -> None:
    page = form_page(world)
    for name in ("verifiers", "approvers"):
        assert f'type="checkbox" name="{name}"' in page
        assert f'<select name="{name}"' not in page
    assert "Ctrl-click" not in page
    assert "Second Verifier" in page


def test_an_answer_outside_a_dropdowns_options_is_refused(world) -> None:
    with pytest.raises(PermitError, match=r"'Maybe' is not one of Yes,No"):
        new_permit(world, answers={1: {1: "Roof", 2: "Maybe"}, 2: {1: ""}})
    permit = new_permit(world, answers={1: {1: "Roof", 2: "yes"}, 2: {1: ""}})
    assert permit.answers.get(question="Fire watch assigned?").answer == "yes"


def test_when_one_verifier_rejects_the_other_is_told(world, mailoutbox) -> None:
    permit = new_permit(world, contacts="", verifiers=[world["verifier"], world["verifier2"]])
    rejecting = permit.steps.get(person=world["verifier"])
    actions.decide(rejecting.pk, world["verifier"], approve=False, remark="No fire blanket")
    notify_rejection(permit.pk)
    by_address = {m.to[0]: m for m in mailoutbox}
    assert sorted(by_address) == ["requester@facility.test", "verifier2@facility.test"]
    told = by_address["verifier2@facility.test"].body
    assert "has been rejected by" in told and world["verifier"].name in told
    assert "No decision is needed from you" in told and "No fire blanket" in told
    # Sent once, however often the task runs.
    assert notify_rejection(permit.pk)["sent"] == 0


def test_every_permit_mail_names_who_raised_it(world, mailoutbox) -> None:
    from apps.work_order_management.notifications import request_decisions

    permit = new_permit(world, contacts="")
    request_decisions(permit.pk, "VERIFIER")
    (mail,) = mailoutbox
    assert f"Raised: by {world['requester'].name}" in mail.body
    assert f"<td>{world['requester'].name}</td>" in mail.alternatives[0][0]
