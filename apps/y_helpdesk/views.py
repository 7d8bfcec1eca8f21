from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from apps.activity.models import Asset
from apps.onboarding.lookups import lookup_choices
from apps.peoples.access import can, visible_groups, visible_people, visible_sites
from apps.y_helpdesk.actions import save_ticket
from apps.y_helpdesk.conversation import timeline
from apps.y_helpdesk.models import MAX_TICKET_TEXT_CHARS, Ticket

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


@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    tickets = Ticket.objects.visible_to(request.user).select_related(
        "site", "category", "assigned_people", "assigned_group"
    )[:200]
    return render(request, "y_helpdesk/ticket_list.html", {"title": "Tickets", "tickets": tickets})


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
            "raised_at": timezone.localtime(ticket.created_at, zone),
            "entries": timeline(ticket),
            "form": form,
            "may_edit": may_reply,
        },
    )
