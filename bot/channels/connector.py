"""The Bot Connector endpoint of the local Direct Line, as Azure's channel service provides it.

The `serviceUrl` of the local Direct Line's conversations is this app itself. The app's
own turns reply in-process (`AftercareAdapter.process_local_activity`); this endpoint is
where an SDK `ConnectorClient` posts instead, over HTTP to
`/v3/conversations/{id}/activities[/{replyToId}]`: a proactive message, or a bot in
another process on this machine (the benchmark's stock echo bot). Only this machine may
post here.
"""

from __future__ import annotations

from typing import ClassVar

from aiohttp import web

from bot.channels.directline import DirectLineService
from bot.channels.http import RouteSpecs, bound_routes, is_loopback, read_json_object
from bot.errors import BadRequest, Forbidden, NotFound


class ConnectorEndpoint:
    ROUTES: ClassVar[RouteSpecs] = (
        ("POST", "/v3/conversations/{conversation_id}/activities", "send_to_conversation"),
        ("POST", "/v3/conversations/{conversation_id}/activities/{reply_to_id}", "reply_to_activity"),
    )

    def __init__(self, directline: DirectLineService) -> None:
        self._directline = directline

    def routes(self) -> list[web.RouteDef]:
        return bound_routes(self, self.ROUTES)

    async def send_to_conversation(self, request: web.Request) -> web.Response:
        return await self._accept(request, reply_to_id=None)

    async def reply_to_activity(self, request: web.Request) -> web.Response:
        return await self._accept(request, reply_to_id=request.match_info["reply_to_id"])

    async def _accept(self, request: web.Request, reply_to_id: str | None) -> web.Response:
        if not is_loopback(request):
            raise Forbidden("only this app's bot may post to its conversations")
        conversation_id = request.match_info["conversation_id"]
        conversation = await self._directline.conversations.get(conversation_id)
        if conversation is None:
            raise NotFound("no such conversation")
        body = await read_json_object(request)
        if not isinstance(body.get("type"), str):
            raise BadRequest("the activity needs a 'type'")
        stored = await self._directline.accept_from_bot(conversation, body, reply_to_id)
        return web.json_response({"id": stored["id"]}, status=200)
