"""The product's own page for every error status a browser meets.

Django renders its 400, 403, 404 and 500 pages from the project's templates, but an error a
view answers with an empty body (405 from ``require_POST``, 401 from /metrics, 410, 429...) would
show the browser's own "HTTP ERROR 405". For a request that accepts HTML, such a response gets
the product's page, keeping its status and headers (Allow, WWW-Authenticate, Retry-After).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import select_template

# What each status tells a person, and what they can do about it.
WORDS = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    401: ("Sign-in needed", "This address is for signed-in operators and monitoring only."),
    403: ("Not allowed", "Your role does not allow this."),
    404: ("Page not found", "There is nothing here, or it is not yours to see."),
    405: (
        "Not opened this way",
        "This address is not a page to open: the product's forms and buttons use it.",
    ),
    410: ("Gone", "What was here has expired or been removed."),
    413: ("Too large", "What was sent is larger than the product accepts."),
    429: ("Too many requests", "Please wait a moment before trying again."),
}


def error_page(request: HttpRequest, status: int) -> str:
    """The product's page for `status` (its own template where there is one)."""
    title, message = WORDS.get(
        status,
        ("Something went wrong", "The server could not finish this request; please try again."),
    )
    template = select_template([f"{status}.html", "core/error.html"])
    context = {"code": status, "title": title, "message": message, "method": request.method}
    return str(template.render(context, request))


class ProductErrorPagesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and not response.streaming
            and not response.content
            and request.accepts("text/html")
        ):
            response.content = error_page(request, response.status_code).encode()
            response["Content-Type"] = "text/html; charset=utf-8"
        return response
