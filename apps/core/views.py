import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from apps.core.scrape import render
from apps.core.services import health_report


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the system works (healthy, or degraded: something needs a look), 503 when a
    check fails, to anyone (probes, load balancers: they restart or route around only what is
    down); what the report says (worker host names, the beat holder's host and pid, backlogs)
    only to operators: signed-in superusers, and monitors sending the HEALTHZ_TOKEN bearer
    token."""
    report = health_report()
    status = 503 if report["status"] == "unhealthy" else 200
    if not (request.user.is_superuser or _bearer_token_matches(request, settings.HEALTHZ_TOKEN)):
        return JsonResponse({"status": report["status"]}, status=status)
    return JsonResponse(report, status=status)


def _bearer_token_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given, token)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: for Prometheus (the METRICS_TOKEN bearer token) and operators
    (superusers), as the task platform's records are in the admin: worker and partner host
    names are no one else's business."""
    if not (_bearer_token_matches(request, settings.METRICS_TOKEN) or request.user.is_superuser):
        status = 403 if request.user.is_authenticated else 401
        response = HttpResponse(status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
