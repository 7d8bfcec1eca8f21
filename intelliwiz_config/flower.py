"""Flower, with its password on every endpoint: ``python -m intelliwiz_config.flower``.

Flower 2 asks for FLOWER_BASIC_AUTH (or its OAuth sign-in) on its pages and API, but serves
/metrics and /healthcheck to anyone, and they name the workers, queues and task counts. Run
this way, every request of every handler signs in first, as the pages do; the arguments are
``celery flower``'s.
"""

from __future__ import annotations

import sys

from flower.views import BaseHandler
from tornado.web import HTTPError


def _signed_in_first(handler: BaseHandler) -> None:
    """Every request proves who it is before its handler runs: Flower's own check (its
    get_current_user answers 401 to a wrong or missing password)."""
    if handler.request.method != "OPTIONS" and not handler.current_user:
        raise HTTPError(401)


def require_sign_in_everywhere() -> None:
    """Put _signed_in_first before every Flower handler, its API handlers' own check too."""
    from flower.api import BaseApiHandler

    api_check = BaseApiHandler.prepare

    def api_prepare(handler: BaseApiHandler) -> None:
        _signed_in_first(handler)
        api_check(handler)

    BaseHandler.prepare = _signed_in_first  # type: ignore[method-assign]
    BaseApiHandler.prepare = api_prepare  # type: ignore[method-assign]


def main() -> None:
    from celery.bin.celery import main as celery

    require_sign_in_everywhere()
    sys.argv = ["celery", "-A", "intelliwiz_config", "flower", *sys.argv[1:]]
    celery()


if __name__ == "__main__":
    main()
