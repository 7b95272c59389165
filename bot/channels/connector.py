"""The Bot Connector endpoint the bot replies through, as Azure's channel service provides it.

The bot's `serviceUrl` for Direct Line conversations is this app itself, so replies take
the same path they take in production: the SDK's ConnectorClient posts them over HTTP to
`/v3/conversations/{id}/activities[/{replyToId}]`. Only the app's own bot may post here,
so requests must come from this machine.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.channels.directline import CHANNEL_ID, DirectLineService
from bot.channels.http import is_loopback, read_json_object
from bot.errors import BadRequest, Forbidden, NotFound


class ConnectorEndpoint:
    def __init__(self, directline: DirectLineService) -> None:
        self._directline = directline

    def routes(self) -> list[web.RouteDef]:
        base = "/v3/conversations/{conversation_id}/activities"
        return [
            web.post(base, self.send_to_conversation),
            web.post(base + "/{reply_to_id}", self.reply_to_activity),
        ]

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
        activity = self._from_bot(body, conversation_id, reply_to_id or conversation.answering)
        stored = await self._directline.conversations.append(conversation, activity)
        return web.json_response({"id": stored["id"]}, status=200)

    def _from_bot(
        self, body: dict[str, Any], conversation_id: str, reply_to_id: str | None
    ) -> dict[str, Any]:
        activity = {k: v for k, v in body.items() if k not in {"id", "timestamp", "serviceUrl"}}
        sender: dict[str, Any] = activity["from"] if isinstance(activity.get("from"), dict) else {}
        activity["from"] = {
            "id": sender.get("id") or self._directline.bot_id,
            "name": sender.get("name") or self._directline.bot_name,
            "role": "bot",
        }
        activity["conversation"] = {"id": conversation_id}
        activity["channelId"] = CHANNEL_ID
        if reply_to_id and not activity.get("replyToId"):
            activity["replyToId"] = reply_to_id
        return activity
