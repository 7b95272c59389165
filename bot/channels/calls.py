"""Phone calls: the Event Grid webhook that answers them, and the calls' own events.

Azure Communication Services (ACS) holds the shop's phone number. When someone calls it,
Event Grid posts an `IncomingCall` event to `POST /api/calls/incoming`; the app answers
through Call Automation with the call's audio streamed both ways to its WebSocket
(`/api/voice`, served by the voice channel), and ACS then posts the call's events
(connected, media streaming started, disconnected ...) to `POST /api/calls/events`.

Trust: Event Grid's subscription URL carries a secret (`?secret=`, ACS_WEBHOOK_SECRET),
so no one else can make the app answer calls; each answered call gets signed tickets
(`bot.channels.call_tickets`) in the two URLs ACS calls back, so those serve only calls
this app answered, and say who is calling.

Event Grid delivers again a request that fails with a 5xx or times out (for up to a
day) and drops one refused with a 400. Hence: a malformed body is a 400 (delivering it
again cannot help); a call ACS could not answer now (5xx, 408, 429, a timeout, no
connection) makes the request a 503, so Event Grid delivers it again while the phone
may still ring, and calls of that request already answered are not answered twice; a
call ACS refused for good (another 4xx: the caller hung up, another app answered, the
app's credentials are wrong) is logged and acknowledged.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import urlencode

from aiohttp import web

from bot.channels.call_tickets import CALL_EVENTS, CallTickets
from bot.channels.http import MAX_BODY_BYTES, RouteSpecs, bound_routes
from bot.errors import BadRequest, ChannelError, Unauthorized
from bot.rate_limits import RateLimits
from bot.settings import Settings
from shop.errors import AftercareError, ConfigurationError

log = logging.getLogger(__name__)

SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
INCOMING_CALL = "Microsoft.Communication.IncomingCall"
NOT_CONFIGURED = (
    "phone calls are not configured: set ACS_CONNECTION_STRING (or ACS_ENDPOINT with the app's "
    "managed identity), PUBLIC_URL and ACS_WEBHOOK_SECRET to turn them on"
)
VOICE_PATH = "/api/voice"
EVENTS_PATH = "/api/calls/events"
# Event Grid waits 30 s for the webhook's answer; answering a call must end well before.
ANSWER_DEADLINE_S = 12.0
# ACS sends a call's events for as long as it lasts, so their ticket outlives any call.
CALL_EVENTS_TICKET_TTL_S = 12 * 3600
# Events logged at INFO; the other events of a call at DEBUG, failures at WARNING.
_LOGGED_EVENTS = frozenset(
    f"Microsoft.Communication.{name}"
    for name in (
        "CallConnected",
        "CallDisconnected",
        "MediaStreamingStarted",
        "MediaStreamingStopped",
        "ParticipantsUpdated",
    )
)
# Answered IncomingCall events remembered (by Event Grid id), and calls kept in `calls`.
_REMEMBERED = 2048
_MAX_ID_CHARS = 512
# The incomingCallContext is a signed token of a few kilobytes.
_MAX_CONTEXT_CHARS = 32_768
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_HOST_NAME = re.compile(r"[A-Za-z0-9.-]{1,253}")

Outcome = Literal["answered", "refused", "retry"]


class CallAnswerer(Protocol):
    """Answers a ringing call (`bot.channels.call_automation.AcsCallAnswerer` with ACS)."""

    async def answer(self, incoming_call_context: str, callback_url: str, media_url: str) -> str:
        """Answers with the call's events sent to `callback_url` and its audio streamed both
        ways over the WebSocket `media_url`; returns ACS's call connection id. Raises
        `AnswerFailed`, whose `transient` says whether asking again may help."""
        ...

    async def aclose(self) -> None: ...


class AnswerFailed(AftercareError):
    """ACS did not answer the call. `transient`: it may if asked again (5xx, 408, 429,
    a timeout, no connection); otherwise it refused for good (the call is gone or was
    answered elsewhere, or the app's credentials are wrong)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class CallsUnavailable(ChannelError):
    """503: phone calls are not configured, or ACS could not answer now."""

    status = 503
    code = "ServiceUnavailable"

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class IncomingCall:
    """What the app needs of an `IncomingCall` event."""

    event_id: str
    context: str
    caller: str
    call_id: str


@dataclass
class CallRecord:
    """One answered call as its events describe it, kept in memory by this instance."""

    call_id: str
    caller: str
    call_connection_id: str = ""
    state: Literal["answered", "connected", "disconnected"] = "answered"


class CallWebhooks:
    """`POST /api/calls/incoming` (Event Grid) and `POST /api/calls/events` (Call Automation)."""

    ROUTES: ClassVar[RouteSpecs] = (
        ("POST", "/api/calls/incoming", "incoming"),
        ("OPTIONS", "/api/calls/incoming", "handshake"),
        ("POST", EVENTS_PATH, "events"),
    )

    def __init__(
        self,
        answerer: CallAnswerer | None,
        media_tickets: CallTickets,
        event_tickets: CallTickets,
        *,
        public_url: str,
        webhook_secret: str = "",
        limits: RateLimits | None = None,
        answer_deadline_s: float = ANSWER_DEADLINE_S,
    ) -> None:
        if event_tickets.audience == media_tickets.audience:
            raise ValueError("the media stream's and the events' tickets need different audiences")
        self._answerer = answerer
        self._media_tickets = media_tickets
        self._event_tickets = event_tickets
        self._public_url = public_url.rstrip("/")
        self._secret = webhook_secret
        self._limits = limits or RateLimits.default(enabled=False)
        self._answer_deadline_s = answer_deadline_s
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._calls: OrderedDict[str, CallRecord] = OrderedDict()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        media_tickets: CallTickets,
        ticket_key: bytes,
        *,
        limits: RateLimits | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> CallWebhooks:
        """The webhooks, answering through ACS when it is configured (503 otherwise)."""
        return cls(
            build_call_answerer(settings, **(client_options or {})),
            media_tickets,
            CallTickets(ticket_key, CALL_EVENTS_TICKET_TTL_S, audience=CALL_EVENTS),
            public_url=settings.public_url,
            webhook_secret=settings.acs_webhook_secret,
            limits=limits,
        )

    def routes(self) -> list[web.RouteDef]:
        return bound_routes(self, self.ROUTES)

    def call(self, call_id: str) -> CallRecord | None:
        """The call with this correlation id (a `CallTicket.call_id`), if this instance answered
        it or took its events."""
        return self._calls.get(call_id)

    async def aclose(self) -> None:
        if self._answerer is not None:
            await self._answerer.aclose()

    # -- Event Grid ----------------------------------------------------------------------

    async def incoming(self, request: web.Request) -> web.Response:
        """Event Grid's deliveries: the subscription's validation, and ringing calls."""
        self._admit(request)
        self._check_secret(request)
        events = await read_events(request)
        kinds = [event_type(event, index) for index, event in enumerate(events)]
        for event, kind in zip(events, kinds, strict=True):
            if kind == SUBSCRIPTION_VALIDATION:
                code = _data(event).get("validationCode")
                if not isinstance(code, str) or not code or len(code) > _MAX_ID_CHARS:
                    raise BadRequest("the validation event has no data.validationCode")
                log.info("Event Grid subscription validated for /api/calls/incoming")
                return web.json_response({"validationResponse": code})
        calls = [
            incoming_call(event, index)
            for index, (event, kind) in enumerate(zip(events, kinds, strict=True))
            if kind == INCOMING_CALL
        ]
        ignored = len(events) - len(calls)
        if ignored:
            log.debug("ignored %d Event Grid event(s) that are not incoming calls", ignored)
        pending = [call for call in calls if call.event_id not in self._handled]
        outcomes = await asyncio.gather(*(self._answer(call) for call in pending))
        retry = outcomes.count("retry")
        if retry:
            raise CallsUnavailable(
                f"{retry} call(s) could not be answered now; deliver the events again", retry_after_s=5
            )
        return web.json_response(
            {
                "answered": len(calls) - outcomes.count("refused"),
                "refused": outcomes.count("refused"),
                "ignored": ignored,
            }
        )

    async def handshake(self, request: web.Request) -> web.Response:
        """The CloudEvents webhook handshake (`OPTIONS`), made for CloudEvents subscriptions."""
        self._admit(request)
        self._check_secret(request)
        origin = request.headers.get("WebHook-Request-Origin", "")
        if not _HOST_NAME.fullmatch(origin):
            raise BadRequest("a WebHook-Request-Origin header naming the sender's host is required")
        return web.Response(headers={"WebHook-Allowed-Origin": origin, "Allow": "POST, OPTIONS"})

    async def _answer(self, call: IncomingCall) -> Outcome:
        assert self._answerer is not None
        events_ticket = self._event_tickets.issue(call.caller, call.call_id)
        media_ticket = self._media_tickets.issue(call.caller, call.call_id)
        callback_url = f"{self._public_url}{EVENTS_PATH}?{urlencode({'ticket': events_ticket})}"
        media_url = f"{websocket_base(self._public_url)}{VOICE_PATH}?{urlencode({'ticket': media_ticket})}"
        who = f"call {call.call_id} (caller {mask_caller(call.caller)})"
        try:
            async with asyncio.timeout(self._answer_deadline_s):
                connection_id = await self._answerer.answer(call.context, callback_url, media_url)
        except TimeoutError:
            log.warning(
                "%s: ACS did not answer within %.0f s; Event Grid will retry", who, self._answer_deadline_s
            )
            return "retry"
        except AnswerFailed as exc:
            if exc.transient:
                log.warning("%s could not be answered now; Event Grid will retry: %s", who, exc)
                return "retry"
            log.warning("%s was not answered: ACS refused it: %s", who, exc)
            self._remember(call.event_id)
            return "refused"
        self._remember(call.event_id)
        self._keep(CallRecord(call.call_id, call.caller, connection_id))
        log.info("answered %s as connection %s", who, connection_id)
        return "answered"

    # -- Call Automation -----------------------------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        """A call's events, at the callback URL it was answered with: only with its ticket."""
        self._admit(request)
        ticket = self._event_tickets.redeem(request.query.get("ticket", ""))
        events = await read_events(request)
        described = [call_event(event, index) for index, event in enumerate(events)]
        if any(call_id != ticket.call_id for _, call_id, _, _ in described):
            raise Unauthorized("the call ticket is for another call")
        record = self._calls.get(ticket.call_id) or CallRecord(ticket.call_id, ticket.caller)
        for kind, _, connection_id, data in described:
            record.call_connection_id = connection_id or record.call_connection_id
            if kind.endswith(".CallConnected"):
                record.state = "connected"
            elif kind.endswith(".CallDisconnected"):
                record.state = "disconnected"
            _log_call_event(kind, record, data)
        self._keep(record)
        return web.json_response({"received": len(described)})

    # -- helpers -------------------------------------------------------------------------

    def _admit(self, request: web.Request) -> None:
        self._limits.per_address(self._limits.calls, request)
        if self._answerer is None:
            raise CallsUnavailable(NOT_CONFIGURED)

    def _check_secret(self, request: web.Request) -> None:
        if not self._secret:
            return
        given = request.query.get("secret", "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.info("refused a call webhook request without the right secret from %s", request.remote)
            raise Unauthorized("the webhook secret is missing or wrong")

    def _remember(self, event_id: str) -> None:
        if event_id:
            self._handled[event_id] = None
            if len(self._handled) > _REMEMBERED:
                self._handled.popitem(last=False)

    def _keep(self, record: CallRecord) -> None:
        self._calls[record.call_id] = record
        self._calls.move_to_end(record.call_id)
        if len(self._calls) > _REMEMBERED:
            self._calls.popitem(last=False)


def build_call_answerer(settings: Settings, **client_options: Any) -> CallAnswerer | None:
    """ACS's answerer when ACS_CONNECTION_STRING or ACS_ENDPOINT is set, else None."""
    if not (settings.acs_connection_string or settings.acs_endpoint):
        return None
    try:
        from bot.channels.call_automation import AcsCallAnswerer
    except ImportError as exc:
        if not (exc.name or "").startswith("azure"):
            raise
        raise ConfigurationError(
            "ACS_CONNECTION_STRING / ACS_ENDPOINT need the azure-voice extra "
            "(pip install 'aftercare[azure-voice]'): azure-communication-callautomation is not installed"
        ) from None
    return AcsCallAnswerer.from_settings(settings, **client_options)


async def read_events(request: web.Request) -> list[dict[str, Any]]:
    """The events of a webhook request: a JSON array of objects (or one CloudEvent sent
    alone); 413 when too large, 400 with a sentence otherwise."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=request.content_length)
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("the request body is not valid JSON") from None
    except (ValueError, RecursionError):
        raise BadRequest("the request body holds a number or a nesting too large to read") from None
    if isinstance(body, dict) and "specversion" in body:
        body = [body]  # a CloudEvent delivered on its own (structured mode)
    if not isinstance(body, list):
        raise BadRequest("the request body must be a JSON array of events")
    if not body:
        raise BadRequest("the request body holds no events")
    for index, event in enumerate(body):
        if not isinstance(event, dict):
            raise BadRequest(f"event {index} is not a JSON object")
    return body


def event_type(event: dict[str, Any], index: int) -> str:
    """`eventType` (Event Grid schema) or `type` (CloudEvents)."""
    kind = event.get("eventType", event.get("type"))
    if not isinstance(kind, str) or not kind:
        raise BadRequest(f"event {index} has no eventType")
    return kind


def incoming_call(event: dict[str, Any], index: int) -> IncomingCall:
    data = _data(event)
    context = data.get("incomingCallContext")
    if not isinstance(context, str) or not context or len(context) > _MAX_CONTEXT_CHARS:
        raise BadRequest(f"IncomingCall event {index} has no data.incomingCallContext")
    caller = caller_id(data.get("from"))
    if caller is None:
        raise BadRequest(f"IncomingCall event {index} names no caller in data.from")
    call_id = _short_string(data.get("correlationId"))
    if call_id is None:
        raise BadRequest(f"IncomingCall event {index} has no data.correlationId")
    event_id = _short_string(event.get("id")) or ""
    return IncomingCall(event_id, context, caller, call_id)


def call_event(event: dict[str, Any], index: int) -> tuple[str, str, str, dict[str, Any]]:
    """A Call Automation event as (type, the call's correlation id, its connection id, data)."""
    kind = event_type(event, index)
    data = _data(event)
    call_id = _short_string(data.get("correlationId"))
    if call_id is None:
        raise BadRequest(f"event {index} has no data.correlationId")
    return kind, call_id, _short_string(data.get("callConnectionId")) or "", data


def caller_id(identifier: Any) -> str | None:
    """An ACS communication identifier as the caller's id: the E.164 phone number, or the
    raw id (`8:acs:...` for an ACS user, `4:...` for a number withheld or malformed)."""
    if not isinstance(identifier, dict):
        return None
    phone = identifier.get("phoneNumber")
    if isinstance(phone, dict) and isinstance(phone.get("value"), str) and _E164.fullmatch(phone["value"]):
        return str(phone["value"])
    return _short_string(identifier.get("rawId"))


def mask_caller(caller: str) -> str:
    """Enough of a caller's id for logs to tell calls apart, never the number itself."""
    if _E164.fullmatch(caller):
        return f"{caller[:2]}…{caller[-2:]}"
    kind, colon, _ = caller.partition(":")
    return f"{kind[:8]}:…" if colon else "…"


def websocket_base(public_url: str) -> str:
    """PUBLIC_URL as a WebSocket base: https -> wss, http -> ws (local tests)."""
    scheme, separator, rest = public_url.partition("://")
    schemes = {"https": "wss", "http": "ws"}
    if not separator or scheme.lower() not in schemes:
        raise ConfigurationError(f"PUBLIC_URL must be an http(s):// URL, not {public_url!r}")
    return f"{schemes[scheme.lower()]}://{rest.rstrip('/')}"


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    if not isinstance(data, dict):
        raise BadRequest(f"the {event.get('eventType') or event.get('type')} event has no data object")
    return data


def _short_string(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() and len(value) <= _MAX_ID_CHARS else None


def _log_call_event(kind: str, record: CallRecord, data: dict[str, Any]) -> None:
    connection = record.call_connection_id or "?"
    who = f"call {record.call_id} (connection {connection}, caller {mask_caller(record.caller)})"
    name = kind.rpartition(".")[2] or kind
    if kind.endswith("Failed"):
        result = data.get("resultInformation")
        result = result if isinstance(result, dict) else {}
        log.warning(
            "%s: %s (code %s, subcode %s): %s",
            who,
            name,
            result.get("code"),
            result.get("subCode"),
            str(result.get("message", ""))[:300],
        )
    elif kind in _LOGGED_EVENTS:
        participants = data.get("participants")
        extra = f", {len(participants)} participant(s)" if isinstance(participants, list) else ""
        log.info("%s: %s%s", who, name, extra)
    else:
        log.debug("%s: %s", who, name)
