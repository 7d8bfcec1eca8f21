from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.reports.dashboard import lookup_choices, people_choices
from apps.y_helpdesk.actions import save_ticket
from apps.y_helpdesk.models import Ticket


class TicketForm(forms.ModelForm):
    def __init__(self, *args, client_id: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Lists the form shows come from the warmed cache; validation still checks the database.
        if client_id:
            self.fields["assigned_people"].choices = [("", "---------"), *people_choices(client_id)]
        self.fields["category"].choices = [("", "---------"), *lookup_choices("TICKETCATEGORY")]

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


@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    tickets = Ticket.objects.select_related("site")[:200]
    return render(request, "y_helpdesk/ticket_list.html", {"title": "Tickets", "tickets": tickets})


@login_required
def ticket_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    ticket = get_object_or_404(Ticket, pk=pk) if pk else None
    form = TicketForm(request.POST or None, instance=ticket, client_id=request.user.client_id)
    if request.method == "POST" and form.is_valid():
        save_ticket(form.save(commit=False), request.user, created=ticket is None)
        return redirect("helpdesk:ticket-list")
    title = f"Ticket #{ticket.number}" if ticket else "New ticket"
    return render(request, "core/form.html", {"title": title, "form": form})
