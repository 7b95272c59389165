"""Direct Line 3.0, served by the app so the real Web Chat runs against it unchanged.

Routes live under `/v3/directline`. Customer activities are stored in the conversation
log (which echoes them to the client with a server-set id, as Azure does) and then handed
to the bot through the adapter; the bot's replies come back in-process (or, from an SDK
client elsewhere, through the Bot Connector endpoint, `bot.channels.connector`) and are
appended to the same log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from bot.channels.directline_log import (
    LIVE_ONLY,
    Activity,
    Conversation,
    ConversationRegistry,
    Subscription,
    utc_timestamp,
)
from bot.channels.http import (
    RouteSpecs,
    bearer_credential,
    bound_routes,
    is_loopback,
    loopback_url,
    parse_activity,
    read_json_object,
)
from bot.channels.tokens import DirectLineGrant, TokenSigner
from bot.errors import BadRequest, Forbidden, NotFound, Unauthorized
from bot.rate_limits import RateLimits
from bot.redaction import redact_activity
from shop.errors import StoreUnavailable
from shop.store import jsondoc
from shop.store.base import StateStore

log = logging.getLogger(__name__)

# Takes one of the bot's activities into the conversation's log; answers its id.
BotDelivery = Callable[[Activity], Awaitable[str]]
# Hands an activity to the bot, with the way its replies may come back in-process (a bot
# may also reply over HTTP, through the Bot Connector endpoint); resolves when the turn is over.
TurnRunner = Callable[[Activity, BotDelivery], Awaitable[None]]

CHANNEL_ID = "directline"
CONVERSATION_IDLE_LIMIT_S = 24 * 3600
# How often an open stream looks in the store for activities other instances appended.
STORE_POLL_INTERVAL_S = 1.0
_ACCEPTED_ACTIVITY_TYPES = {"message", "event", "typing", "invoke", "conversationUpdate"}


class DirectLineService:
    """Conversations, tokens and the routes of the local Direct Line channel."""

    # (HTTP method, path, handler name): `routes()` binds them to this service; the app
    # binds them to the service it builds at start-up (`bot.channels.http.deferred_routes`).
    ROUTES: ClassVar[RouteSpecs] = (
        ("POST", "/v3/directline/tokens/generate", "generate_token"),
        ("POST", "/v3/directline/tokens/refresh", "refresh_token"),
        ("POST", "/v3/directline/conversations", "start_conversation"),
        ("GET", "/v3/directline/conversations/{conversation_id}", "reconnect"),
        ("POST", "/v3/directline/conversations/{conversation_id}/activities", "post_activity"),
        ("GET", "/v3/directline/conversations/{conversation_id}/activities", "get_activities"),
        ("GET", "/v3/directline/conversations/{conversation_id}/stream", "stream"),
    )

    def __init__(
        self,
        signer: TokenSigner,
        store: StateStore,
        runner: TurnRunner,
        *,
        bot_id: str,
        bot_name: str,
        public_url: str = "",
        replay_after_s: float = 30.0,
        limits: RateLimits | None = None,
    ) -> None:
        """A working channel in one step: conversation logs in `store` (the app's state
        store), customer activities to `runner` (the bot)."""
        self.signer = signer
        self._replay_after_s = replay_after_s
        self.conversations = ConversationRegistry(store, CONVERSATION_IDLE_LIMIT_S)
        self.bot_id = bot_id
        self.bot_name = bot_name
        self._public_url = public_url
        self._runner = runner
        self._turns: set[asyncio.Task[None]] = set()
        self.limits = limits or RateLimits.default(enabled=False)

    # ----- tokens and access ---------------------------------------------------------

    def _require_secret_or_loopback(self, request: web.Request) -> None:
        """Secret-only operations: the secret as in Azure, or loopback when none is configured."""
        if self.signer.has_secret:
            if not self.signer.is_secret(bearer_credential(request)):
                raise Unauthorized("the Direct Line secret is not valid")
        elif not is_loopback(request):
            raise Forbidden("no Direct Line secret is configured; only local clients may do this")

    def issue_grant(self, user_id: str | None = None) -> dict[str, Any]:
        """A token for a new conversation, optionally bound to a (signed-in) user id."""
        conversation_id = secrets.token_urlsafe(18)
        user = user_id or f"dl_{secrets.token_hex(8)}"
        return {
            "conversationId": conversation_id,
            "token": self.signer.issue(conversation_id, user),
            "expires_in": self.signer.ttl_s,
        }

    def _grant_for(self, request: web.Request, conversation_id: str) -> DirectLineGrant:
        return self.signer.verify_for(bearer_credential(request), conversation_id)

    async def _conversation(self, conversation_id: str, *, refresh: bool = False) -> Conversation:
        """The conversation (with what sibling instances appended, when `refresh`), after
        answering any of its messages whose turn was lost."""
        conversation = await self.conversations.get(conversation_id)
        if conversation is None:
            raise NotFound("no such conversation (it may have ended)")
        if refresh:
            await self.conversations.refresh(conversation)
        self._answer_lost_turns(conversation)
        return conversation

    def _answer_lost_turns(self, conversation: Conversation) -> None:
        """Runs the turns of acknowledged customer messages that never got an answer.

        The message is in the log (it was acknowledged) but the process running its turn
        died first, e.g. killed in a deploy. It is answered once it is older than any turn
        can take, unless this process has its turn queued: a sibling instance still
        working on it has finished by then, so nothing is answered twice. (Every message
        the bot runs gets a reply that names it; a future relay to a human agent, which
        answers nothing itself, must mark the messages it relays the same way.)
        """
        now = time.time()
        for activity in conversation.unanswered():
            activity_id = str(activity.get("id"))
            if activity_id in conversation.queued or activity_id in conversation.replayed:
                continue
            if now - _posted_at(activity) < self._replay_after_s:
                continue
            conversation.replayed.add(activity_id)
            log.warning(
                "answering message %s of conversation %s again: its turn was lost (an instance stopped)",
                activity_id,
                conversation.id,
            )
            self._schedule_turn(conversation, activity)

    def _stream_url(
        self, request: web.Request, conversation_id: str, token: str, watermark: str | None
    ) -> str:
        base = self._public_url or f"{request.scheme}://{request.host}"
        base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        url = f"{base}/v3/directline/conversations/{conversation_id}/stream?t={token}"
        return f"{url}&watermark={watermark}" if watermark else url

    def _conversation_reply(
        self, request: web.Request, grant: DirectLineGrant, watermark: str | None = None
    ) -> dict[str, Any]:
        token = self.signer.issue(grant.conversation_id, grant.user_id)
        return {
            "conversationId": grant.conversation_id,
            "token": token,
            "expires_in": self.signer.ttl_s,
            "streamUrl": self._stream_url(request, grant.conversation_id, token, watermark),
        }

    # ----- routes --------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return bound_routes(self, self.ROUTES)

    async def generate_token(self, request: web.Request) -> web.Response:
        self._require_secret_or_loopback(request)
        self.limits.per_address(self.limits.conversations, request)
        body = await read_json_object(request, allow_empty=True)
        return web.json_response(self.issue_grant(_bound_user_id(body)))

    async def refresh_token(self, request: web.Request) -> web.Response:
        grant = self.signer.verify(bearer_credential(request))
        return web.json_response(
            {
                "conversationId": grant.conversation_id,
                "token": self.signer.issue(grant.conversation_id, grant.user_id),
                "expires_in": self.signer.ttl_s,
            }
        )

    async def start_conversation(self, request: web.Request) -> web.Response:
        self.limits.per_address(self.limits.conversations, request)
        credential = request.headers.get("Authorization", "")
        if not self.signer.has_secret and credential == "" and is_loopback(request):
            # Local mode with no secret: a loopback client may start a conversation directly.
            grant = self.signer.verify(self.issue_grant()["token"])
        elif self.signer.is_secret(bearer_credential(request)):
            body = await read_json_object(request, allow_empty=True)
            issued = self.issue_grant(_bound_user_id(body))
            grant = self.signer.verify(issued["token"])
        else:
            grant = self.signer.verify(bearer_credential(request))
        conversation, created = await self.conversations.open(grant.conversation_id, grant.user_id)
        if created:
            self._schedule_turn(conversation, self._members_added(conversation, loopback_url(request)))
        return web.json_response(self._conversation_reply(request, grant), status=201 if created else 200)

    async def reconnect(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        grant = self._grant_for(request, conversation_id)
        await self._conversation(conversation_id)
        watermark = request.query.get("watermark") or None
        if watermark is not None:
            _parse_watermark(watermark)
        return web.json_response(self._conversation_reply(request, grant, watermark))

    async def post_activity(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        grant = self._grant_for(request, conversation_id)
        self.limits.per_conversation(conversation_id)
        conversation = await self._conversation(conversation_id)
        body = await read_json_object(request)
        activity_type = body.get("type")
        if not isinstance(activity_type, str) or activity_type not in _ACCEPTED_ACTIVITY_TYPES:
            raise BadRequest("the activity needs a 'type' such as 'message'")
        if "text" in body and not isinstance(body["text"], str | None):
            raise BadRequest("'text' must be a string")
        parse_activity(body)  # 400 now, not a failed turn later, for a field of the wrong type
        body = redact_activity(body)  # before the log (and everything after it) sees the text
        stored = await self.conversations.append(
            conversation, self._from_customer(body, grant, loopback_url(request))
        )
        self._schedule_turn(conversation, stored)
        return web.json_response({"id": stored["id"]})

    async def get_activities(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        self._grant_for(request, conversation_id)
        conversation = await self._conversation(conversation_id, refresh=True)
        activities, watermark = conversation.since(_parse_watermark(request.query.get("watermark")))
        return web.json_response({"activities": activities, "watermark": str(watermark)})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        conversation_id = request.match_info["conversation_id"]
        token = request.query.get("t", "")
        if not token:
            raise Unauthorized("the stream URL must carry its token (t=...)")
        self.signer.verify_for(token, conversation_id)
        conversation = await self._conversation(conversation_id)
        watermark = _parse_watermark(request.query.get("watermark"))

        socket = web.WebSocketResponse(heartbeat=30.0)
        await socket.prepare(request)
        subscription = conversation.subscribe()
        try:
            await self._pump(socket, conversation, subscription, watermark)
        finally:
            conversation.unsubscribe(subscription)
            if not socket.closed:
                await socket.close()
        return socket

    async def _pump(
        self,
        socket: web.WebSocketResponse,
        conversation: Conversation,
        sub: Subscription,
        watermark: int | None,
    ) -> None:
        # Nothing reaches a client before its socket opens, so replay what it has missed first.
        backlog, last_sent = conversation.since(watermark)
        if backlog and not await _send_frame(socket, backlog, last_sent):
            return

        async def read_until_closed() -> None:
            # The client only sends keep-alives (""); we just notice when it goes away.
            async for message in socket:
                if message.type == WSMsgType.ERROR:
                    break
            sub.queue.put_nowait(None) if not sub.queue.full() else None

        reader = asyncio.create_task(read_until_closed())
        try:
            while not socket.closed:
                try:
                    item = await asyncio.wait_for(sub.queue.get(), STORE_POLL_INTERVAL_S)
                except TimeoutError:
                    # Another app instance may have appended (its bot answered this
                    # conversation); the refresh publishes those to this queue.
                    try:
                        await self.conversations.refresh(conversation)
                        self._answer_lost_turns(conversation)
                    except StoreUnavailable as exc:
                        # The socket stays open through a store outage: the next poll
                        # catches up, and the client loses nothing by waiting.
                        log.warning("stream of %s could not poll the store: %s", conversation.id, exc)
                    continue
                if item is None or sub.overflowed:
                    break
                index, activity = item
                if index == LIVE_ONLY:
                    if not await _send_frame(socket, [activity], last_sent):
                        break
                    continue
                if index <= last_sent:
                    continue  # already sent in the backlog
                if not await _send_frame(socket, [activity], index):
                    break
                last_sent = index
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    # ----- activities to the bot -------------------------------------------------------

    def _from_customer(self, body: dict[str, Any], grant: DirectLineGrant, service_url: str) -> Activity:
        sender: dict[str, Any] = body["from"] if isinstance(body.get("from"), dict) else {}
        activity: Activity = {
            k: v for k, v in body.items() if k not in {"id", "timestamp", "from", "recipient"}
        }
        activity.update(
            {
                "channelId": CHANNEL_ID,
                "serviceUrl": service_url,
                "conversation": {"id": grant.conversation_id},
                # The user id is the token's, whatever the client claims, as in Azure.
                "from": {"id": grant.user_id, "name": sender.get("name") or "", "role": "user"},
                "recipient": {"id": self.bot_id, "name": self.bot_name, "role": "bot"},
            }
        )
        return activity

    async def accept_from_bot(
        self, conversation: Conversation, body: dict[str, Any], reply_to_id: str | None = None
    ) -> Activity:
        """Stores one of the bot's activities in the log (and so pushes it to the client).

        The one way in for the bot's replies, whether they come over HTTP through the Bot
        Connector endpoint or in-process from this app's own adapter. A typing indicator
        is only pushed to the open streams, not logged: as in Azure's Direct Line, it is
        not queued for polling clients or replayed on reconnect (a stale "typing..." would
        mean nothing), so it takes no watermark and no store write.
        """
        activity = {k: v for k, v in body.items() if k not in {"id", "timestamp", "serviceUrl"}}
        sender: dict[str, Any] = activity["from"] if isinstance(activity.get("from"), dict) else {}
        activity["from"] = {
            "id": sender.get("id") or self.bot_id,
            "name": sender.get("name") or self.bot_name,
            "role": "bot",
        }
        activity["conversation"] = {"id": conversation.id}
        activity["channelId"] = CHANNEL_ID
        reply_to_id = reply_to_id or conversation.answering
        if reply_to_id and not activity.get("replyToId"):
            activity["replyToId"] = reply_to_id
        if activity.get("type") == "typing":
            activity["id"] = f"{conversation.id}|typing-{secrets.token_hex(6)}"
            activity["timestamp"] = utc_timestamp()
            conversation.publish_live(activity)
            return activity
        return await self.conversations.append(conversation, activity)

    def _members_added(self, conversation: Conversation, service_url: str) -> Activity:
        bot = {"id": self.bot_id, "name": self.bot_name, "role": "bot"}
        user = {"id": conversation.user_id, "role": "user"}
        return {
            "type": "conversationUpdate",
            "id": f"{conversation.id}|start",
            "channelId": CHANNEL_ID,
            "serviceUrl": service_url,
            "conversation": {"id": conversation.id},
            "from": user,
            "recipient": bot,
            "membersAdded": [bot, user],
        }

    def _schedule_turn(self, conversation: Conversation, activity: Activity) -> None:
        conversation.queued.add(str(activity.get("id")))
        task = asyncio.get_running_loop().create_task(self._run_turn(conversation, activity))
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    async def _run_turn(self, conversation: Conversation, activity: Activity) -> None:
        async with conversation.turn_lock:
            conversation.answering = activity.get("id") if activity.get("type") == "message" else None

            async def deliver(reply: Activity) -> str:
                stored = await self.accept_from_bot(conversation, reply)
                return str(stored["id"])

            try:
                await self._runner(activity, deliver)
            except Exception:
                # The adapter's on_turn_error already answered the customer when it could.
                log.exception("direct line turn failed (conversation=%s)", conversation.id)
            finally:
                conversation.answering = None
                conversation.queued.discard(str(activity.get("id")))

    async def aclose(self) -> None:
        for task in list(self._turns):
            task.cancel()
        if self._turns:
            await asyncio.gather(*self._turns, return_exceptions=True)


async def _send_frame(socket: web.WebSocketResponse, activities: list[Activity], watermark: int) -> bool:
    """Sends one frame; False when the client has gone (it closed its tab or lost the
    network mid-send). That is the client's everyday behaviour, not an error: it resumes
    from its watermark when it reconnects, so nothing is lost."""
    try:
        await socket.send_json({"activities": activities, "watermark": str(watermark)}, dumps=jsondoc.dumps)
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError is one
        return False
    return True


def _posted_at(activity: Activity) -> float:
    """When the channel stored the activity (its server-set timestamp), as a Unix time."""
    try:
        return datetime.fromisoformat(str(activity.get("timestamp"))).timestamp()
    except ValueError:
        return time.time()  # no usable timestamp: treat it as just posted


def _bound_user_id(body: dict[str, Any]) -> str | None:
    user = body.get("user")
    if user is None:
        return None
    if not isinstance(user, dict) or not isinstance(user.get("id"), str) or not user["id"].strip():
        raise BadRequest("'user' must be an object with a non-empty string 'id'")
    if len(user["id"]) > 128:
        raise BadRequest("'user.id' is too long (128 characters at most)")
    return str(user["id"]).strip()


def _parse_watermark(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("the watermark must be a whole number") from None
    if value < -1:
        raise BadRequest("the watermark must not be negative")
    return value
