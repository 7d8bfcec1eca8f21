"""Pages that span the apps: where signing in lands each person."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from apps.peoples.access import Role, role_of
from apps.peoples.models import People
from apps.work_order_management.views import steps_waiting_for


def landing_route(person: People) -> str:
    """A decision waiting for the person first; else managers see the dashboard and
    technicians their tickets."""
    if steps_waiting_for(person).exists():
        return "permits:list"
    if role_of(person) == Role.TECHNICIAN:
        return "helpdesk:ticket-list"
    return "dashboard"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect(landing_route(cast(People, request.user)))  # login_required: a person
