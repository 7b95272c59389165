"""Direct Line tokens: signed, per conversation, optionally bound to a user id.

They are JWTs (PyJWT, HS256) so any app instance holding the signing key can check
them without a shared token table. A token names exactly one conversation: presenting
it for another conversation is refused with 403.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from bot.errors import Forbidden, TokenExpired, Unauthorized

_ISSUER = "aftercare-directline"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class DirectLineGrant:
    """What a valid token allows: one conversation, as one user."""

    conversation_id: str
    user_id: str
    expires_at: int


class TokenSigner:
    """Issues and checks Direct Line tokens.

    The signing key is derived from `DIRECT_LINE_SECRET` when set (so every instance
    agrees), otherwise it is random per process, which is right for local use.
    """

    def __init__(self, secret: str, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock
        self._key = (
            hmac.new(secret.encode(), b"aftercare direct line tokens", "sha256").digest()
            if secret
            else secrets.token_bytes(32)
        )
        self.ttl_s = ttl_s

    def use_key(self, key: bytes) -> None:
        """Signs with `key` from now on (a key shared through the store, when there is no secret)."""
        if not self._secret:
            self._key = key

    @property
    def has_secret(self) -> bool:
        return bool(self._secret)

    def is_secret(self, credential: str) -> bool:
        return bool(self._secret) and hmac.compare_digest(credential.encode(), self._secret.encode())

    def issue(self, conversation_id: str, user_id: str) -> str:
        now = int(self._clock())
        claims = {
            "iss": _ISSUER,
            "conv": conversation_id,
            "user": user_id,
            "iat": now,
            "exp": now + self.ttl_s,
            # Two tokens issued in the same second for one conversation must still differ.
            "jti": secrets.token_urlsafe(8),
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str) -> DirectLineGrant:
        """Returns the grant, or raises Unauthorized (bad token) or TokenExpired (403)."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={"require": ["exp", "conv", "user", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("the token has expired; refresh it or start a new conversation") from None
        except jwt.PyJWTError:
            raise Unauthorized("the token is not valid") from None
        if not isinstance(claims.get("conv"), str) or not isinstance(claims.get("user"), str):
            raise Unauthorized("the token is not valid")
        return DirectLineGrant(claims["conv"], claims["user"], int(claims["exp"]))

    def verify_for(self, token: str, conversation_id: str) -> DirectLineGrant:
        grant = self.verify(token)
        if grant.conversation_id != conversation_id:
            raise Forbidden("the token is not valid for this conversation")
        return grant
