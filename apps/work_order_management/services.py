"""Work-permit and SLA rules: numbering, answers, the weighted score, the service month."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Max

from apps.activity.models import AnswerType, Question
from apps.onboarding.models import BusinessUnit
from apps.work_order_management.models import (
    PermitAnswer,
    PermitSection,
    PermitType,
    WorkPermit,
)

# answers[section seqno][question seqno] = the answer text
Answers = dict[int, dict[int, str]]


class PermitError(ValueError):
    """A permit request that cannot be accepted; the message says what to fix."""


def next_number(site: BusinessUnit, kind: str) -> int:
    """The site's next permit number. Call inside a transaction that has locked the site row."""
    last = WorkPermit.objects.filter(site=site, kind=kind).aggregate(last=Max("number"))["last"]
    return (last or 0) + 1


def lock_site(site: BusinessUnit) -> BusinessUnit:
    return BusinessUnit.objects.select_for_update().get(pk=site.pk)


def build_answers(
    permit: WorkPermit, sections: list[PermitSection], answers: Answers
) -> list[PermitAnswer]:
    """Answer rows for `sections`, validated: mandatory answers given, contacts are e-mails."""
    questions: dict[int, list[Question]] = defaultdict(list)
    for question in Question.objects.filter(
        question_set_id__in={s.question_set_id for s in sections}
    ):
        questions[question.question_set_id].append(question)
    rows = []
    for section in sections:
        given = answers.get(section.seqno, {})
        for question in questions[section.question_set_id]:
            text = (given.get(question.seqno) or "").strip()
            where = f"section {section.seqno} ({section.name}), question {question.seqno}"
            if question.is_mandatory and not text:
                raise PermitError(f"{where} ({question.question}) needs an answer")
            if text and (
                section.role == PermitSection.Role.CONTACTS
                or question.answer_type == AnswerType.EMAILID
            ):
                _check_emails(text, where)
            if text and question.answer_type in CHOICE_TYPES:
                _check_choices(question, text, where)
            rows.append(
                PermitAnswer(
                    permit=permit,
                    section=section,
                    answer=text,
                    **{f: getattr(question, f) for f in Question.RULE_FIELDS},
                )
            )
    return rows


CHOICE_TYPES = (AnswerType.DROPDOWN, AnswerType.MULTISELECT)


def _check_choices(question: Question, text: str, where: str) -> None:
    """A dropdown's answer is one of its options; a multi-select's, some of them."""
    options = {o.strip().lower() for o in question.options.split(",") if o.strip()}
    if not options:
        return
    given = [text] if question.answer_type == AnswerType.DROPDOWN else text.split(",")
    for answer in (g.strip() for g in given):
        if answer.lower() not in options:
            raise PermitError(
                f"{where} ({question.question}): {answer!r} is not one of {question.options}"
            )


def _check_emails(text: str, where: str) -> None:
    for address in (part.strip() for part in text.split(",")):
        try:
            validate_email(address)
        except ValidationError:
            raise PermitError(f"{where}: {address!r} is not an e-mail address") from None


def sla_score(permit: WorkPermit) -> Decimal:
    """Per section, the mean of numeric answers up to 10, times the section weight; the sum of
    those, times 10, to two decimals."""
    by_section: dict[int, list[Decimal]] = defaultdict(list)
    weights: dict[int, Decimal] = {}
    for answer in permit.answers.select_related("section"):
        weights[answer.section_id] = answer.section.weight
        try:
            value = Decimal(answer.answer)
        except InvalidOperation:
            continue
        if value <= 10:
            by_section[answer.section_id].append(value)
    total = sum(
        (
            sum(values, Decimal(0)) / len(values) * weights[section_id]
            for section_id, values in by_section.items()
        ),
        Decimal(0),
    )
    return (total * 10).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def previous_month(day: date) -> date:
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)


def sections_of(permit_type: PermitType, *roles: str) -> list[PermitSection]:
    return list(permit_type.sections.filter(role__in=roles).order_by("seqno"))
