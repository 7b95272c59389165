"""Rate limits on the public endpoints: token buckets per client address and per
conversation, answering 429 with `Retry-After` when one is empty.

In memory, per app instance: each instance enforces its own budget, so N instances let
N times as much through. That bounds abuse of one instance's CPU and store; a shop that
needs one global budget puts Azure Front Door's or API Management's rate limiting in
front. Written here because the few lines of a token bucket are simpler than a
dependency that needs a shared store.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web

from bot.errors import ChannelError

# Buckets kept at once; the least recently used are dropped first (a new client starts full).
MAX_KEYS = 50_000


class TooManyRequests(ChannelError):
    status = 429
    code = "TooManyRequests"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, int(retry_after_s + 0.999))


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`burst` requests at once, then `per_minute` a minute, for each key."""

    def __init__(self, name: str, *, burst: int, per_minute: float, clock: object = time.monotonic) -> None:
        self.name = name
        self._burst = float(burst)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> None:
        """Spends one token of `key`'s bucket, or raises `TooManyRequests`."""
        now = self._clock()  # type: ignore[operator]
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self._burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
            bucket.at = now
        if bucket.tokens < 1:
            raise TooManyRequests(
                f"too many requests ({self.name}); please slow down", (1 - bucket.tokens) / self._rate
            )
        bucket.tokens -= 1


@dataclass(frozen=True)
class RateLimits:
    """The app's limits: generous for people, tight for scripts. `enabled=False` (the
    RATE_LIMITS setting) lets everything through."""

    # New conversations and tokens, per client address.
    conversations: RateLimiter
    # Customer messages, per conversation.
    messages: RateLimiter
    # Agent sign-in attempts, per client address (password guessing).
    sign_in: RateLimiter
    # Phone-call webhooks (Event Grid, Call Automation callbacks), per client address.
    # Azure sends every call's events from a few addresses: a budget for a busy shop's
    # calls that still stops a script hammering the routes.
    calls: RateLimiter
    enabled: bool = True
    # Proxies in front of the app that append the client's address to X-Forwarded-For
    # (Azure App Service and Container Apps: 1). 0: the connection's own address.
    trusted_proxy_hops: int = 0

    @classmethod
    def default(cls, *, enabled: bool = True, trusted_proxy_hops: int = 0) -> RateLimits:
        return cls(
            conversations=RateLimiter("new conversations from this address", burst=30, per_minute=30),
            messages=RateLimiter("messages in this conversation", burst=20, per_minute=60),
            sign_in=RateLimiter("sign-in attempts from this address", burst=10, per_minute=5),
            calls=RateLimiter("call webhook requests from this address", burst=120, per_minute=600),
            enabled=enabled,
            trusted_proxy_hops=trusted_proxy_hops,
        )

    def per_address(self, limiter: RateLimiter, request: web.Request) -> None:
        """Spends from the client address's bucket. This machine itself (tests, the
        benchmarks, a local tool) is not limited."""
        if not self.enabled:
            return
        address = self.client_address(request)
        try:
            if ipaddress.ip_address(address).is_loopback:
                return
        except ValueError:
            pass
        limiter.take(address)

    def per_conversation(self, conversation_id: str) -> None:
        if self.enabled:
            self.messages.take(conversation_id)

    def client_address(self, request: web.Request) -> str:
        if self.trusted_proxy_hops:
            forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
            forwarded = [part for part in forwarded if part]
            if len(forwarded) >= self.trusted_proxy_hops:
                return forwarded[-self.trusted_proxy_hops]
        return request.remote or "unknown"
