"""Security headers on every response, and a strict Content-Security-Policy on the pages.

The Web Chat page loads only its own scripts and styles (no inline script); Web Chat
itself writes its styles into the page at run time, so `style-src` allows inline styles
there and nowhere else. The agent console sets its own, stricter policy. Pages may be
framed only by the app itself, unless FRAME_ANCESTORS names the shop's site.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def webchat_policy(frame_ancestors: str) -> str:
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' blob:; "
        f"connect-src 'self'; frame-ancestors {frame_ancestors}; base-uri 'none'; "
        "form-action 'self'; object-src 'none'"
    )


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers every response gets; each page sets its own Content-Security-Policy."""
    response = await handler(request)
    for name, value in _ALWAYS.items():
        response.headers.setdefault(name, value)
    return response
