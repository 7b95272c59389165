"""Signed tickets that tie what ACS sends back about a phone call to the call the app answered.

When the app answers a call it gives Azure Communication Services two URLs of its own:
the WebSocket that carries the call's audio (`/api/voice?ticket=...`) and the URL of the
call's events (`/api/calls/events?ticket=...`). Each carries a ticket naming the caller
and the call, so those routes serve only calls this app answered, and the voice channel
learns who is calling without trusting anything else in the request.

Tickets are JWTs (PyJWT, HS256, like the Direct Line tokens): any instance holding the
key checks them without a shared table. The key is random and kept in the state store,
so a restarted app and its sibling instances accept each other's tickets. Each kind of
ticket has its own audience: a media-stream ticket is refused on the events route and
the other way round.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from bot.errors import Unauthorized
from shop.errors import ConcurrencyConflict
from shop.store.base import StateStore

TICKET_KEY_DOC = "calls/ticket-key"
# Audiences: the call's audio stream (`/api/voice`), and its Call Automation events.
MEDIA_STREAM = "voice"
CALL_EVENTS = "call-events"

_ISSUER = "aftercare-calls"
_ALGORITHM = "HS256"
_MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class CallTicket:
    """What a valid ticket says: who calls, and which call.

    `caller` is the caller's phone number in E.164 (`+14255550123`), or ACS's raw id when
    the call has no number (a Teams or ACS user). `call_id` is the call's correlation id
    (ACS's CallId): known when the call rings, and carried by every Call Automation event
    of the call. (ACS's call connection id exists only once the call is answered, after
    the URLs holding the tickets were given.)
    """

    caller: str
    call_id: str


class CallTickets:
    """Issues and redeems the tickets of one audience (`MEDIA_STREAM` or `CALL_EVENTS`)."""

    def __init__(
        self,
        key: bytes,
        ttl_s: float = 300,
        *,
        audience: str = MEDIA_STREAM,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"a call ticket key needs at least {_MIN_KEY_BYTES} bytes")
        if ttl_s <= 0:
            raise ValueError("a call ticket needs a positive lifetime")
        self._key = key
        self.ttl_s = ttl_s
        self.audience = audience
        self._clock = clock

    def issue(self, caller: str, call_id: str) -> str:
        """A URL-safe ticket (base64url and dots) for `caller` on call `call_id`."""
        if not caller or not call_id:
            raise ValueError("a call ticket needs a caller and a call id")
        now = self._clock()
        claims = {
            "iss": _ISSUER,
            "aud": self.audience,
            "caller": caller,
            "call": call_id,
            "iat": int(now),
            "exp": int(now + self.ttl_s),
            # Two tickets for one call issued in the same second still differ.
            "jti": secrets.token_urlsafe(8),
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def redeem(self, ticket: str) -> CallTicket:
        """The ticket's caller and call; `Unauthorized` when it is expired, altered, signed
        with another key, or meant for the other route."""
        try:
            claims = jwt.decode(
                ticket,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                audience=self.audience,
                # Expiry is checked below against this object's clock (a test's may differ).
                options={
                    "require": ["exp", "iss", "aud", "caller", "call"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise Unauthorized("the call ticket is not valid") from None
        expires = claims["exp"]
        if not isinstance(expires, int | float) or expires <= self._clock():
            raise Unauthorized("the call ticket has expired")
        caller, call_id = claims.get("caller"), claims.get("call")
        if not (isinstance(caller, str) and caller and isinstance(call_id, str) and call_id):
            raise Unauthorized("the call ticket is not valid")
        return CallTicket(caller, call_id)


async def stored_ticket_key(state: StateStore) -> bytes:
    """The ticket key shared through the state store, created by whichever instance
    starts first (an instance that loses that race reads the winner's key)."""
    stored = await state.read_state(TICKET_KEY_DOC)
    if stored is None:
        with contextlib.suppress(ConcurrencyConflict):
            await state.insert_state(TICKET_KEY_DOC, {"key": secrets.token_hex(32)})
        stored = await state.read_state(TICKET_KEY_DOC)
    if stored is None or not isinstance(stored.doc.get("key"), str):
        raise ConcurrencyConflict(f"the call ticket key ({TICKET_KEY_DOC}) could not be read back")
    return bytes.fromhex(stored.doc["key"])
