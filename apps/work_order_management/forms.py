from __future__ import annotations

from django import forms

from apps.activity.models import AnswerType, Question
from apps.peoples.access import deciders_for, visible_sites
from apps.peoples.models import People
from apps.work_order_management.models import PermitKind, PermitSection, PermitType, Vendor
from apps.work_order_management.services import Answers


def options_of(question: Question) -> list[str]:
    return [option.strip() for option in question.options.split(",") if option.strip()]


def answer_field(question: Question, label: str, contacts: bool) -> forms.Field:
    """The form field a question asks for: its choices as a select box (one) or boxes to tick
    (several), a number, a date or a time with the phone's own keyboard or picker, text else."""
    required = question.is_mandatory
    options = options_of(question)
    if question.answer_type == AnswerType.DROPDOWN and options:
        return forms.ChoiceField(
            label=label, required=required, choices=[("", "Choose…")] + [(o, o) for o in options]
        )
    if question.answer_type == AnswerType.MULTISELECT and options:
        return forms.MultipleChoiceField(
            label=label,
            required=required,
            choices=[(o, o) for o in options],
            widget=forms.CheckboxSelectMultiple,
        )
    if contacts or question.answer_type == AnswerType.EMAILID:
        widget = forms.TextInput(attrs={"inputmode": "email", "autocomplete": "off"})
        return forms.CharField(
            label=label,
            required=required,
            widget=widget,
            help_text="E-mail addresses, separated by commas",
        )
    widgets = {
        AnswerType.NUMERIC: forms.TextInput(attrs={"inputmode": "decimal"}),
        AnswerType.RATING: forms.TextInput(attrs={"inputmode": "decimal"}),
        AnswerType.DATE: forms.TextInput(attrs={"type": "date"}),
        AnswerType.TIME: forms.TextInput(attrs={"type": "time"}),
        AnswerType.MULTILINE: forms.Textarea(attrs={"rows": 3}),
    }
    return forms.CharField(label=label, required=required, widget=widgets.get(question.answer_type))


def answer_fields(sections: list[PermitSection]) -> dict[str, forms.Field]:
    """One form field per question of `sections`, named a-<section seqno>-<question seqno>."""
    fields: dict[str, forms.Field] = {}
    questions = Question.objects.filter(question_set__in=[s.question_set_id for s in sections])
    by_set: dict[int, list[Question]] = {}
    for question in questions.order_by("seqno"):
        by_set.setdefault(question.question_set_id, []).append(question)
    for section in sections:
        for question in by_set.get(section.question_set_id, []):
            fields[f"a-{section.seqno}-{question.seqno}"] = answer_field(
                question,
                f"{section.name}: {question.question}",
                contacts=section.role == PermitSection.Role.CONTACTS,
            )
    return fields


def answers_from(cleaned: dict[str, object]) -> Answers:
    answers: Answers = {}
    for name, value in cleaned.items():
        if name.startswith("a-"):
            _, section, question = name.split("-")
            text = ", ".join(value) if isinstance(value, list) else str(value or "")
            answers.setdefault(int(section), {})[int(question)] = text
    return answers


class ReturnForm(forms.Form):
    """The return work permit: its section's questions."""

    def __init__(self, sections: list[PermitSection], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(answer_fields(sections))


class PeopleChoice(forms.ModelMultipleChoiceField):
    """People to tick, each by name and what they are: boxes a thumb can hit, not a list that
    asks for Ctrl-click."""

    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: People) -> str:
        what = obj.designation.name if obj.designation_id else ""
        return f"{obj.name}, {what}" if what else obj.name


class PermitForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None)
    vendor = forms.ModelChoiceField(queryset=Vendor.objects.filter(enabled=True))
    verifiers = PeopleChoice(
        queryset=People.objects.none(),
        required=False,
        help_text="Tick each one: they verify first, each by a link in their mail.",
    )
    approvers = PeopleChoice(
        queryset=People.objects.none(),
        help_text="Tick each one: they approve after the verifiers, each by a link in their mail.",
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
        deciders = (
            deciders_for(self.fields["site"].queryset)
            .select_related("designation")
            .order_by("name", "pk")
        )
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
