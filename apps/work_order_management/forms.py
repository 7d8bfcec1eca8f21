from __future__ import annotations

from django import forms

from apps.activity.models import AnswerType, Question
from apps.peoples.access import deciders_for, visible_sites
from apps.peoples.models import People
from apps.work_order_management.models import PermitKind, PermitSection, PermitType, Vendor
from apps.work_order_management.services import Answers


def answer_fields(sections: list[PermitSection]) -> dict[str, forms.Field]:
    """One form field per question of `sections`, named a-<section seqno>-<question seqno>."""
    fields: dict[str, forms.Field] = {}
    questions = Question.objects.filter(question_set__in=[s.question_set_id for s in sections])
    by_set: dict[int, list[Question]] = {}
    for question in questions.order_by("seqno"):
        by_set.setdefault(question.question_set_id, []).append(question)
    for section in sections:
        for question in by_set.get(section.question_set_id, []):
            label = f"{section.name}: {question.question}"
            fields[f"a-{section.seqno}-{question.seqno}"] = forms.CharField(
                label=label,
                required=question.is_mandatory,
                help_text="Comma-separated e-mail addresses"
                if section.role == PermitSection.Role.CONTACTS
                or question.answer_type == AnswerType.EMAILID
                else "",
            )
    return fields


def answers_from(cleaned: dict[str, object]) -> Answers:
    answers: Answers = {}
    for name, value in cleaned.items():
        if name.startswith("a-"):
            _, section, question = name.split("-")
            answers.setdefault(int(section), {})[int(question)] = str(value or "")
    return answers


class PermitForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None)
    vendor = forms.ModelChoiceField(queryset=Vendor.objects.filter(enabled=True))
    verifiers = forms.ModelMultipleChoiceField(
        queryset=People.objects.filter(is_active=True),
        required=False,
        help_text="They verify first, each by a link in their mail. Ctrl-click (⌘ on a Mac) "
        "to choose several.",
    )
    approvers = forms.ModelMultipleChoiceField(
        queryset=People.objects.filter(is_active=True),
        help_text="They approve after the verifiers. Ctrl-click (⌘ on a Mac) to choose several.",
    )
    service_month = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        input_formats=["%Y-%m", "%Y-%m-%d"],
        help_text="The month the report rates (default: last month)",
    )

    def __init__(self, permit_type: PermitType, *args, person, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.permit_type = permit_type
        # Choices and validation both come from what the person may reach at the type's client.
        self.fields["site"].queryset = visible_sites(person).filter(client=permit_type.client)
        self.fields["vendor"].queryset = Vendor.objects.filter(
            client=permit_type.client, enabled=True
        )
        for name in ("site", "vendor"):  # one choice in reach: nothing to choose
            only = list(self.fields[name].queryset[:2])
            if len(only) == 1:
                self.fields[name].initial = only[0].pk
        # Verifiers and approvers: whose reach holds one of those sites (checked against the
        # chosen site in clean).
        deciders = deciders_for(self.fields["site"].queryset)
        self.fields["verifiers"].queryset = deciders
        self.fields["approvers"].queryset = deciders
        if permit_type.kind != PermitKind.SLA:
            del self.fields["service_month"]
        else:
            del self.fields["verifiers"]  # an SLA report has approvers only
        sections = permit_type.sections.filter(
            role__in=[PermitSection.Role.FORM, PermitSection.Role.CONTACTS]
        ).order_by("seqno")
        self.fields.update(answer_fields(list(sections)))

    def clean(self) -> dict:
        data = super().clean()
        site = data.get("site")
        if site is not None:
            for name in ("verifiers", "approvers"):
                chosen = list(data.get(name) or [])
                strangers = not_deciders_at(site, chosen)
                if strangers:
                    self.add_error(name, strangers)
        return data


def not_deciders_at(site, people: list[People]) -> str:
    """Why some of `people` may not verify or approve at `site` ("" when all may)."""
    allowed = set(
        deciders_for(type(site).objects.filter(pk=site.pk))
        .filter(pk__in=[p.pk for p in people])
        .values_list("pk", flat=True)
    )
    names = [p.name for p in people if p.pk not in allowed]
    if not names:
        return ""
    return (
        f"{', '.join(names)} cannot decide on a permit at {site.name}: choose people of the "
        "site, its in-charges or the client's admins"
    )
