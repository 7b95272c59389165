"""The agent console: `/agent` (the page) and its JSON API under `/agent/api/`.

Only a signed-in agent sees anything (401 otherwise). An agent sees the queue and what
they hold; another agent's conversation is 403. Every state-changing request must carry
the session's CSRF token in `X-CSRF-Token` and, when the browser sends one, an `Origin`
of this site (403 otherwise); the session cookie is `HttpOnly` and `SameSite=Strict`.
The queue and the conversations an agent holds stream live as server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import yaml
from aiohttp import web

from bot.channels.http import RouteSpecs, bound_routes, read_json_object
from bot.errors import BadRequest, Forbidden, NotFound, Unauthorized
from bot.handoff.agents import SESSION_TTL_S, Agents, Session
from bot.handoff.service import HandoffError, HandoffService
from bot.rate_limits import RateLimits
from prompts import PROMPTS_DIR

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
COOKIE = "aftercare_agent"
PRESENCE_EVERY_S = 30.0
KEEPALIVE_S = 15.0
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}


class AgentConsole:
    ROUTES: ClassVar[RouteSpecs] = (
        ("GET", "/agent", "page"),
        ("GET", "/agent/console.js", "script"),
        ("GET", "/agent/console.css", "stylesheet"),
        ("POST", "/agent/api/sign-in", "sign_in"),
        ("POST", "/agent/api/sign-out", "sign_out"),
        ("GET", "/agent/api/me", "me"),
        ("GET", "/agent/api/queue", "queue"),
        ("GET", "/agent/api/events", "events"),
        ("GET", "/agent/api/canned", "canned"),
        ("GET", "/agent/api/conversations/{conversation_id}", "conversation"),
        ("POST", "/agent/api/conversations/{conversation_id}/claim", "claim"),
        ("POST", "/agent/api/conversations/{conversation_id}/messages", "message"),
        ("POST", "/agent/api/conversations/{conversation_id}/hand-back", "hand_back"),
        ("POST", "/agent/api/conversations/{conversation_id}/close", "close"),
    )

    def __init__(self, handoff: HandoffService, agents: Agents, limits: RateLimits | None = None) -> None:
        self._handoff = handoff
        self._agents = agents
        self._limits = limits or RateLimits.default(enabled=False)
        self._canned = _load_canned()

    def routes(self) -> list[web.RouteDef]:
        return bound_routes(self, self.ROUTES)

    # -- the page -------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "console.html", headers=_SECURITY_HEADERS)

    async def script(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "console.js", headers=_SECURITY_HEADERS)

    async def stylesheet(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "console.css", headers=_SECURITY_HEADERS)

    # -- sign-in --------------------------------------------------------------------------------

    async def sign_in(self, request: web.Request) -> web.Response:
        _same_origin(request)
        self._limits.per_address(self._limits.sign_in, request)
        body = await read_json_object(request)
        name, password = body.get("name"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
            raise BadRequest("give a name and a password")
        session = await self._agents.sign_in(name, password)
        if session is None:
            raise Unauthorized("the name or the password is not right")
        response = web.json_response(_me(session), headers=_SECURITY_HEADERS)
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=SESSION_TTL_S,
            path="/agent",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        return response

    async def sign_out(self, request: web.Request) -> web.Response:
        session = await self._session(request, changing=True)
        await self._agents.sign_out(session.id)
        response = web.json_response({"signed_out": True}, headers=_SECURITY_HEADERS)
        response.del_cookie(COOKIE, path="/agent")
        return response

    async def me(self, request: web.Request) -> web.Response:
        return web.json_response(_me(await self._session(request)), headers=_SECURITY_HEADERS)

    # -- the queue and the conversations ------------------------------------------------------------

    async def queue(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        return web.json_response(
            {"queue": await self._handoff.queue_for(session.agent)}, headers=_SECURITY_HEADERS
        )

    async def canned(self, request: web.Request) -> web.Response:
        await self._session(request)
        return web.json_response({"canned": self._canned}, headers=_SECURITY_HEADERS)

    async def conversation(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        record = await self._do(self._handoff.visible_to(_conversation_id(request), session.agent))
        return web.json_response(record.model_dump(mode="json"), headers=_SECURITY_HEADERS)

    async def claim(self, request: web.Request) -> web.Response:
        session = await self._session(request, changing=True)
        coro = self._handoff.claim(_conversation_id(request), session.agent, session.display_name)
        record = await self._do(coro)
        return web.json_response(record.model_dump(mode="json"), headers=_SECURITY_HEADERS)

    async def message(self, request: web.Request) -> web.Response:
        session = await self._session(request, changing=True)
        body = await read_json_object(request)
        text = body.get("text")
        if not isinstance(text, str):
            raise BadRequest("the message needs a 'text'")
        record = await self._do(self._handoff.agent_said(_conversation_id(request), session.agent, text))
        return web.json_response({"sent": True, "log": len(record.log)}, headers=_SECURITY_HEADERS)

    async def hand_back(self, request: web.Request) -> web.Response:
        session = await self._session(request, changing=True)
        await self._do(self._handoff.hand_back(_conversation_id(request), session.agent))
        return web.json_response({"status": "bot"}, headers=_SECURITY_HEADERS)

    async def close(self, request: web.Request) -> web.Response:
        session = await self._session(request, changing=True)
        await self._do(self._handoff.close(_conversation_id(request), session.agent))
        return web.json_response({"status": "closed"}, headers=_SECURITY_HEADERS)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: `queue` when the queue changed, `message` when a conversation
        the agent may see changed (they re-read it), and a comment line as keep-alive."""
        session = await self._session(request)
        response = web.StreamResponse(
            headers={**_SECURITY_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        await self._agents.seen(session.agent)
        presence_at = asyncio.get_running_loop().time()
        async with self._handoff.subscribe() as events:
            await _send(response, "queue", {"queue": await self._handoff.queue_for(session.agent)})
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), KEEPALIVE_S)
                except TimeoutError:
                    event = None
                if event is not None and event["type"] == "closing":
                    break
                try:
                    if event is None:
                        await response.write(b": keep-alive\n\n")
                    elif event["type"] == "queue":
                        await _send(
                            response, "queue", {"queue": await self._handoff.queue_for(session.agent)}
                        )
                    else:
                        await _send(response, "message", {"conversation_id": event.get("conversation_id")})
                except (ConnectionResetError, RuntimeError):
                    break  # the console went away
                now = asyncio.get_running_loop().time()
                if now - presence_at > PRESENCE_EVERY_S:
                    presence_at = now
                    with contextlib.suppress(Exception):
                        await self._agents.seen(session.agent)
        return response

    # -- helpers ---------------------------------------------------------------------------------

    async def _session(self, request: web.Request, *, changing: bool = False) -> Session:
        session = await self._agents.session(request.cookies.get(COOKIE))
        if session is None:
            raise Unauthorized("sign in as an agent first")
        if changing:
            _same_origin(request)
            token = request.headers.get("X-CSRF-Token", "")
            # The tokens are ASCII; anything else (bytes that are not UTF-8 arrive as
            # surrogates, which cannot be encoded to compare) is no token of ours.
            if not token.isascii() or not hmac.compare_digest(token.encode(), session.csrf.encode()):
                raise Forbidden("the request is missing this session's CSRF token")
        return session

    @staticmethod
    async def _do(coro: Any) -> Any:
        try:
            return await coro
        except HandoffError as exc:
            if exc.status == 404:
                raise NotFound(str(exc)) from None
            if exc.status == 403:
                raise Forbidden(str(exc)) from None
            if exc.status == 400:
                raise BadRequest(str(exc)) from None
            raise web.HTTPConflict(
                text=json.dumps({"error": {"code": "Conflict", "message": str(exc)}}),
                content_type="application/json",
            ) from None


def _me(session: Session) -> dict[str, Any]:
    return {"agent": session.agent, "name": session.display_name, "csrf": session.csrf}


def _conversation_id(request: web.Request) -> str:
    return request.match_info["conversation_id"]


def _same_origin(request: web.Request) -> None:
    """Refuses a browser request sent from another site (its `Origin` is not ours)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return  # not a browser's cross-site request (curl, the tests' own client)
    if origin != f"{request.scheme}://{request.host}":
        raise Forbidden("cross-site requests are refused")


async def _send(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
    await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


def _load_canned() -> list[dict[str, str]]:
    path = PROMPTS_DIR / "agent" / "canned.yaml"
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [{"title": str(item["title"]), "text": " ".join(str(item["text"]).split())} for item in loaded]
