from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from apps.activity.models import Asset
from apps.onboarding.lookups import lookup_choices
from apps.peoples.access import can, visible_groups, visible_people, visible_sites
from apps.y_helpdesk.actions import save_ticket
from apps.y_helpdesk.models import Ticket

ASSIGNMENT_FIELDS = ("assigned_people", "assigned_group")
WORK_FIELDS = {"status", "comments"}  # what the people working on a ticket change


class TicketForm(forms.ModelForm):
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
            "comments",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "comments": forms.Textarea(attrs={"rows": 3}),
        }


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
        save_ticket(saved, request.user, created=ticket is None)
        messages.success(
            request,
            f"Ticket #{saved.number} {'created' if ticket is None else 'saved'}; "
            "the people concerned are notified by mail.",
        )
        return redirect("helpdesk:ticket-list")
    title = f"Ticket #{ticket.number}" if ticket else "New ticket"
    return render(
        request,
        "core/form.html",
        {
            "title": title,
            "form": form,
            "submit_label": "Save ticket" if ticket else "Raise ticket",
            "cancel_url": reverse("helpdesk:ticket-list"),
        },
    )
