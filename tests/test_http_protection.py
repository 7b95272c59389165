"""Rate limits (429 with Retry-After) on the public endpoints, and security headers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.handoff.agents import Agents
from bot.rate_limits import RateLimiter, TooManyRequests
from bot.service import STORES, create_app
from bot.settings import Settings
from dialogs import OfflineResources
from tests.support.directline import start_conversation

CUSTOMER = {"X-Forwarded-For": "203.0.113.9"}  # a client on the internet, behind one proxy


@pytest.fixture
async def proxied_url(
    make_settings: Callable[..., Settings], offline_resources: OfflineResources
) -> AsyncIterator[tuple[str, TestServer]]:
    """The app behind one trusted proxy (as on App Service), so the client's address is
    the one X-Forwarded-For names."""
    settings = make_settings(TRUSTED_PROXY_HOPS=1)
    server = TestServer(create_app(settings, offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), server
    await server.close()


def test_a_bucket_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter("test", burst=2, per_minute=60, clock=lambda: now[0])
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("a")
    assert refused.value.retry_after_s == 1
    limiter.take("b")  # another key has its own bucket
    now[0] = 1.0
    limiter.take("a")


async def test_new_conversations_from_one_address_are_limited(
    proxied_url: tuple[str, TestServer], http: aiohttp.ClientSession
) -> None:
    base_url, _ = proxied_url
    statuses = []
    for _ in range(31):
        async with http.post(f"{base_url}/api/directline/token", headers=CUSTOMER) as resp:
            statuses.append(resp.status)
            retry_after = resp.headers.get("Retry-After")
            body = await resp.json()
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
    assert retry_after is not None and int(retry_after) >= 1
    assert body["error"]["code"] == "TooManyRequests"
    # Another address, and this machine itself, are not affected.
    async with http.post(
        f"{base_url}/api/directline/token", headers={"X-Forwarded-For": "198.51.100.7"}
    ) as resp:
        assert resp.status == 200
    async with http.post(f"{base_url}/api/directline/token") as resp:
        assert resp.status == 200


async def test_a_flood_of_messages_in_one_conversation_is_limited(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    conversation = await start_conversation(http, base_url)
    statuses = []
    for n in range(21):
        activity = {"type": "message", "text": f"hello {n}", "from": {"id": "u", "role": "user"}}
        async with http.post(
            conversation.url("/activities"), json=activity, headers=conversation.headers
        ) as resp:
            statuses.append(resp.status)
            retry_after = resp.headers.get("Retry-After")
    assert statuses[:20] == [200] * 20 and statuses[20] == 429 and retry_after is not None


async def test_password_guessing_is_limited(
    proxied_url: tuple[str, TestServer], http: aiohttp.ClientSession
) -> None:
    base_url, server = proxied_url
    await Agents(server.app[STORES].state).add("alex", "correct horse battery")
    statuses = []
    for n in range(11):
        async with http.post(
            f"{base_url}/agent/api/sign-in", json={"name": "alex", "password": f"guess {n}"}, headers=CUSTOMER
        ) as resp:
            statuses.append(resp.status)
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


async def test_the_web_chat_page_runs_under_a_strict_policy(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{base_url}/") as resp:
        policy = resp.headers["Content-Security-Policy"]
        page = await resp.text()
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        "script-src 'self';" in policy
        and "frame-ancestors 'self'" in policy
        and "object-src 'none'" in policy
    )
    # No inline script for the policy to allow: every <script> loads a file of the app.
    assert all(src for src in re.findall(r"<script(?: src=\"([^\"]+)\")?>", page))
    async with http.get(f"{base_url}/healthz") as resp:
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" not in resp.headers  # JSON, not a page
