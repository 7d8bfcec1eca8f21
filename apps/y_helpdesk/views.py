from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from apps.activity.models import Asset, Priority
from apps.core.paging import ListFilters, day_range, keyset_page
from apps.core.times import local_label, zone_note
from apps.onboarding.lookups import lookup_choices
from apps.peoples.access import (
    assigned_to,
    can,
    people_choices,
    scope_of,
    visible_groups,
    visible_people,
    visible_sites,
)
from apps.y_helpdesk.actions import save_ticket
from apps.y_helpdesk.conversation import timeline
from apps.y_helpdesk.models import MAX_TICKET_TEXT_CHARS, OPEN_TICKET_STATUSES, Ticket

ASSIGNMENT_FIELDS = ("assigned_people", "assigned_group")
WORK_FIELDS = {"status", "comment"}  # what the people working on a ticket change
COMMENT = forms.CharField(
    label="Add a comment",
    required=False,
    max_length=MAX_TICKET_TEXT_CHARS,
    widget=forms.Textarea(attrs={"rows": 3}),
    help_text="Added to the ticket's conversation with your name and the time; never edited.",
)


class TicketForm(forms.ModelForm):
    comment = COMMENT

    def __init__(self, *args, person, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Choices and validation both come from what the person may reach.
        sites = visible_sites(person)
        self.fields["site"].queryset = sites
        only = list(sites[:2])
        if len(only) == 1 and self.instance.pk is None:  # one site in reach: nothing to choose
            self.fields["site"].initial = only[0].pk
        self.fields["asset"].queryset = Asset.objects.filter(site__in=sites)
        self.fields["assigned_people"].queryset = visible_people(person)
        self.fields["assigned_group"].queryset = visible_groups(person)
        self.fields["category"].choices = [("", "---------"), *lookup_choices("TICKETCATEGORY")]
        # Reassigning and changing what a ticket is are for the managers within whose reach
        # it is; anyone else raises tickets, and changes the status and comments of their own.
        if not can(person, "manage", self.instance if self.instance.pk else None):
            kept = WORK_FIELDS if self.instance.pk else set(self.fields) - set(ASSIGNMENT_FIELDS)
            for name in set(self.fields) - kept:
                field = self.fields[name]
                field.disabled = True
                if isinstance(field, forms.ModelChoiceField) and self.instance.pk:
                    # Kept as it is, even where it lies outside what the person may choose.
                    current = getattr(self.instance, f"{name}_id")
                    field.queryset = field.queryset.model._default_manager.filter(pk=current)

    class Meta:
        model = Ticket
        fields = [
            "description",
            "site",
            "category",
            "priority",
            "status",
            "asset",
            "assigned_people",
            "assigned_group",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class TicketReplyForm(forms.ModelForm):
    """The ticket page's form: a comment, a new status and, for its managers, a new assignee."""

    comment = COMMENT

    def __init__(self, *args, person, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if can(person, "manage", self.instance):
            self.fields["assigned_people"].queryset = visible_people(person)
            self.fields["assigned_group"].queryset = visible_groups(person)
        else:
            for name in ASSIGNMENT_FIELDS:
                del self.fields[name]

    class Meta:
        model = Ticket
        fields = ["comment", "status", "assigned_people", "assigned_group"]

    def clean(self) -> dict:
        data = super().clean()
        if not (data.get("comment") or "").strip() and not self.has_changed():
            raise forms.ValidationError("Write a comment or change the status.")
        return data


DATE_PICKER = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class TicketFilters(ListFilters):
    q = forms.CharField(label="Search", required=False)
    mine = forms.BooleanField(label="My work (assigned to me or my groups)", required=False)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), ("open", "New or open"), *Ticket.Status.choices],
    )
    priority = forms.ChoiceField(required=False, choices=[("", "Any priority"), *Priority.choices])
    site = forms.ModelChoiceField(queryset=None, required=False, empty_label="Every site")
    assignee = forms.ModelChoiceField(
        label="Assigned to", queryset=None, required=False, empty_label="Anyone"
    )
    raised_from = forms.DateField(label="Raised from", required=False, widget=DATE_PICKER)
    raised_to = forms.DateField(label="Raised to", required=False, widget=DATE_PICKER)

    def __init__(self, request: HttpRequest, sites) -> None:
        super().__init__(request)
        self.fields["site"].queryset = sites
        if can(request.user, "manage"):  # whom managers assign; a technician has My work
            self.fields["assignee"].queryset = people_choices(request.user)
        else:
            del self.fields["assignee"]
        zone = timezone.get_current_timezone_name()
        self.fields["raised_to"].help_text = f"Both days included, in your time zone ({zone})"

    def apply(self, tickets, person):
        given = self.values()
        if text := given.get("q", "").strip():
            number = text.lstrip("#")
            match = Q(description__icontains=text)
            tickets = tickets.filter(match | Q(pk=int(number)) if number.isdigit() else match)
        if given.get("mine"):
            tickets = tickets.filter(
                assigned_to(scope_of(person), people="assigned_people", group="assigned_group")
            )
        status = given.get("status")
        if status == "open":
            tickets = tickets.filter(status__in=OPEN_TICKET_STATUSES)
        elif status:
            tickets = tickets.filter(status=status)
        if given.get("priority"):
            tickets = tickets.filter(priority=given["priority"])
        if given.get("site"):
            tickets = tickets.filter(site=given["site"])
        if given.get("assignee"):
            tickets = tickets.filter(assigned_people=given["assignee"])
        bounds = day_range(
            given.get("raised_from"), given.get("raised_to"), timezone.get_current_timezone()
        )
        return tickets.filter(**{f"created_at__{op}": at for op, at in bounds.items()})


@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    """Every ticket the person may see, newest first, a page at a time, filtered from the URL."""
    sites = visible_sites(request.user).order_by("name")
    filters = TicketFilters(request, sites)
    tickets = filters.apply(Ticket.objects.visible_to(request.user), request.user)
    page = keyset_page(
        request,
        tickets.select_related("site", "category", "assigned_people", "assigned_group"),
        ("-created_at", "-pk"),
    )
    zones = set()
    for ticket in page.rows:  # what each row prints, worked out once here
        zones.add(ticket.site.time_zone)
        ticket.raised = local_label(ticket.created_at, ticket.site.tzinfo)
    return render(
        request,
        "y_helpdesk/ticket_list.html",
        {
            "title": "Tickets",
            "page": page,
            "filters": filters,
            "filters_active": filters.active(),
            "search_hint": "Description or #number",
            "time_note": zone_note(zones, "Raised times are"),
            "detail_base": reverse("helpdesk:ticket-list"),
        },
    )


@login_required
def ticket_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    ticket = get_object_or_404(Ticket.objects.visible_to(request.user), pk=pk) if pk else None
    if ticket is not None and not can(request.user, "edit", ticket):
        raise PermissionDenied("this ticket is neither yours nor within your sites")
    form = TicketForm(request.POST or None, instance=ticket, person=request.user)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        save_ticket(
            saved, request.user, created=ticket is None, comment=form.cleaned_data["comment"]
        )
        messages.success(
            request,
            f"Ticket #{saved.number} {'created' if ticket is None else 'saved'}; "
            "the people concerned are notified by mail.",
        )
        return redirect("helpdesk:ticket-detail", saved.pk)
    title = f"Edit ticket #{ticket.number}" if ticket else "New ticket"
    return render(
        request,
        "core/form.html",
        {
            "title": title,
            "form": form,
            "submit_label": "Save ticket" if ticket else "Raise ticket",
            "cancel_url": reverse("helpdesk:ticket-detail", args=[ticket.pk])
            if ticket
            else reverse("helpdesk:ticket-list"),
        },
    )


@login_required
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A ticket and its conversation (comments and history, in the site's time), with a reply
    form for those who work on it."""
    ticket = get_object_or_404(
        Ticket.objects.visible_to(request.user).select_related(
            "site", "category", "asset", "assigned_people", "assigned_group", "created_by"
        ),
        pk=pk,
    )
    may_reply = can(request.user, "edit", ticket)
    if request.method == "POST" and not may_reply:
        raise PermissionDenied("this ticket is neither yours nor within your sites")
    form = (
        TicketReplyForm(request.POST or None, instance=ticket, person=request.user)
        if may_reply
        else None
    )
    if form is not None and request.method == "POST" and form.is_valid():
        save_ticket(
            form.save(commit=False),
            request.user,
            created=False,
            comment=form.cleaned_data["comment"],
        )
        messages.success(
            request, f"Ticket #{ticket.number} saved; the people concerned are notified by mail."
        )
        return redirect(reverse("helpdesk:ticket-detail", args=[ticket.pk]) + "#conversation")
    if form is not None and form.is_bound:
        ticket.refresh_from_db()  # the facts as stored, not as the refused form had them
    zone = ticket.site.tzinfo
    return render(
        request,
        "y_helpdesk/ticket_detail.html",
        {
            "title": f"Ticket #{ticket.number}",
            "ticket": ticket,
            "raised_at": local_label(ticket.created_at, zone),
            "entries": timeline(ticket),
            "form": form,
            "may_edit": may_reply,
        },
    )
