"""Maps errors to HTTP responses in one place: JSON bodies, never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.errors import ChannelError
from shop.errors import StoreUnavailable

log = logging.getLogger(__name__)

# A store outage is expected weather, not a bug: clients are told to retry (503 with
# Retry-After, as Azure's Direct Line does when it is overloaded), nothing was stored,
# and the log gets a warning rather than a stack trace per request.
STORE_UNAVAILABLE_MESSAGE = (
    "the order system is temporarily unavailable and nothing was stored; please try again in a minute"
)
STORE_RETRY_AFTER_S = 10

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    # Direct Line's error shape, used for every JSON API of the app.
    return {"error": {"code": code, "message": message}}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ChannelError as exc:
        retry_after = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return web.json_response(error_body(exc.code, str(exc)), status=exc.status, headers=headers)
    except StoreUnavailable as exc:
        log.warning("store unavailable on %s %s: %s", request.method, request.path, exc)
        return web.json_response(
            error_body("ServiceUnavailable", STORE_UNAVAILABLE_MESSAGE),
            status=503,
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        return web.json_response(
            error_body(exc.reason.replace(" ", ""), message), status=exc.status, headers=_kept_headers(exc)
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(
            error_body("ServiceError", "the service could not handle this request; please retry"), status=500
        )


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in {"Allow", "Retry-After"}}
