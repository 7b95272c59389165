"""The Web Chat page: the real `botframework-webchat` bundle from npm, talking to our Direct Line."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from aiohttp import web

from bot.channels.directline import DirectLineService
from bot.channels.http import RouteSpecs, bound_routes, read_json_object

STATIC_DIR = Path(__file__).parent / "static"


class WebChatPage:
    """`/`, the page's token endpoint, and the Web Chat bundle from WEBCHAT_BUNDLE (npm's
    `botframework-webchat`, installed by `make install` into node_modules)."""

    def __init__(self, directline: DirectLineService, bundle: Path, *, policy: str = "") -> None:
        self._directline = directline
        self._bundle = bundle
        # The page's Content-Security-Policy (`bot.http_security.webchat_policy`).
        self._page_headers = {"Cache-Control": "no-store"} | (
            {"Content-Security-Policy": policy} if policy else {}
        )

    @property
    def bundle_present(self) -> bool:
        return self._bundle.is_file()

    ROUTES: ClassVar[RouteSpecs] = (
        ("GET", "/", "page"),
        ("GET", "/favicon.ico", "favicon"),
        ("GET", "/static/webchat.js", "bundle"),
        ("GET", "/static/chat.js", "script"),
        ("GET", "/static/chat.css", "stylesheet"),
        ("POST", "/api/directline/token", "token"),
    )

    def routes(self) -> list[web.RouteDef]:
        return bound_routes(self, self.ROUTES)

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers=self._page_headers)

    async def script(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "chat.js", headers={"Cache-Control": "no-cache"})

    async def stylesheet(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "chat.css", headers={"Cache-Control": "no-cache"})

    async def favicon(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "favicon.ico")

    async def bundle(self, request: web.Request) -> web.StreamResponse:
        if not self.bundle_present:
            raise web.HTTPServiceUnavailable(
                text="Web Chat is not installed: run `make install` (npm packages are missing)."
            )
        return web.FileResponse(self._bundle, headers={"Cache-Control": "public, max-age=3600"})

    async def token(self, request: web.Request) -> web.Response:
        """The page's own token endpoint: the browser never sees the Direct Line secret.

        Each call gets a token for a new conversation with an anonymous user id; a shop
        that signs customers in binds their id through `/v3/directline/tokens/generate`.
        """
        self._directline.limits.per_address(self._directline.limits.conversations, request)
        await read_json_object(request, allow_empty=True)
        return web.json_response(self._directline.issue_grant())
