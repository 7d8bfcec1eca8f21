from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.onboarding.models import BusinessUnit
from apps.reports.dashboard import site_dashboard


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    person = request.user
    sites = BusinessUnit.objects.filter(kind=BusinessUnit.Kind.SITE, enabled=True)
    if person.site_id:
        sites = sites.filter(pk=person.site_id)
    elif person.client_id:
        sites = sites.filter(client_id=person.client_id)
    elif not person.is_superuser:
        sites = sites.none()
    boards = [site_dashboard(site) for site in sites.order_by("name")[:50]]
    return render(request, "reports/dashboard.html", {"title": "Dashboard", "boards": boards})
