from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from graphene_django.views import GraphQLView
from graphql import ExecutionResult, GraphQLError, OperationType

from apps.mobile.execution import download_file
from apps.mobile.ingest import (
    FAILURE_WINDOW,
    BadRequest,
    DeviceRejected,
    DeviceThrottled,
    accept,
    authenticate_device,
)
from apps.mobile.limits import AnswerBudget, QueryRefused, checked_document
from apps.mobile.schema import schema


class LimitedGraphQLView(GraphQLView):
    """graphene-django's view, refusing documents over the limits of apps.mobile.limits and
    answers over its budget (a view instance serves one request, so one budget)."""

    def get_middleware(self, request):
        self.answer_budget = AnswerBudget()
        return [self.answer_budget]

    def execute_graphql_request(self, request, data, query, variables, operation_name, *args):
        if query:
            try:
                checked_document(
                    self.schema.graphql_schema,
                    query,
                    allowed=(OperationType.QUERY, OperationType.MUTATION),
                )
            except QueryRefused as exc:
                return ExecutionResult(errors=[GraphQLError(str(exc))])
        result = super().execute_graphql_request(
            request, data, query, variables, operation_name, *args
        )
        budget = getattr(self, "answer_budget", None)
        return budget.checked(result) if budget is not None and result is not None else result


graphql = login_required(LimitedGraphQLView.as_view(schema=schema, graphiql=settings.GRAPHIQL))


@csrf_exempt  # devices authenticate with their own credential headers, not a session cookie
@require_POST
def ingest(request: HttpRequest) -> JsonResponse:
    try:
        device = authenticate_device(
            request.headers.get("X-Device-Id", ""),
            request.headers.get("X-Device-Secret", ""),
            address=request.META.get(settings.MOBILE_CLIENT_ADDRESS_META, ""),
        )
    except DeviceThrottled:
        response = JsonResponse({"error": "too many failed attempts; try later"}, status=429)
        response["Retry-After"] = str(FAILURE_WINDOW)
        return response
    except DeviceRejected:
        return JsonResponse({"error": "unauthorized"}, status=401)
    try:
        body = json.loads(request.body or b"null")
        answer = accept(device, body)
    except (ValueError, BadRequest) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(answer, status=200 if "result" in answer else 202)


@require_GET
def download(request: HttpRequest, token: str) -> FileResponse:
    try:
        name = download_file(token)
    except signing.BadSignature:  # also SignatureExpired
        raise Http404("this download link is not valid or has expired") from None
    if not default_storage.exists(name):
        raise Http404("this download is no longer available")
    return FileResponse(
        default_storage.open(name, "rb"),
        content_type="application/gzip",
        as_attachment=True,
        filename=name.rsplit("/", 1)[-1],
    )
