"""The console shows nothing to anyone but a signed-in agent, refuses changes without the
session's CSRF token or from another site, and keeps each agent to the queue and what
they hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.handoff.agents import AgentError, Agents
from bot.service import STORES
from tests.handoff.conftest import PASSWORD, AgentClient, waiting_for_a_person
from tests.support.raw_http import raw_request


@pytest.mark.parametrize("path", ["/me", "/queue", "/events", "/canned", "/conversations/anything"])
async def test_nothing_is_shown_before_sign_in(path: str, base_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{base_url}/agent/api{path}") as resp:
        assert resp.status == 401
        assert "sign in" in (await resp.json())["error"]["message"]


async def test_a_wrong_password_or_unknown_agent_is_refused(
    server: TestServer,
    base_url: str,
    add_agent: Callable[[TestServer, str], Any],
    agent_client: Callable[[str], AgentClient],
) -> None:
    await add_agent(server, "alex")
    assert await agent_client(base_url).sign_in("alex", "not the password") == 401
    assert await agent_client(base_url).sign_in("nobody", PASSWORD) == 401
    assert await agent_client(base_url).sign_in("ALEX ", PASSWORD) == 200


async def test_the_session_cookie_is_httponly_and_samesite(
    server: TestServer,
    base_url: str,
    add_agent: Callable[[TestServer, str], Any],
    http: aiohttp.ClientSession,
) -> None:
    await add_agent(server, "alex")
    async with http.post(
        f"{base_url}/agent/api/sign-in", json={"name": "alex", "password": PASSWORD}
    ) as resp:
        cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/agent" in cookie
    async with http.get(f"{base_url}/agent") as resp:
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"


async def test_changes_need_the_csrf_token_and_this_site(
    server: TestServer,
    base_url: str,
    http: aiohttp.ClientSession,
    add_agent: Callable[[TestServer, str], Any],
    agent_client: Callable[[str], AgentClient],
) -> None:
    await add_agent(server, "alex")
    agent = agent_client(base_url)
    await agent.sign_in("alex")
    conversation, _ = await waiting_for_a_person(http, base_url, verify=False)
    claim = f"/conversations/{conversation.conversation_id}/claim"
    token = agent.csrf
    agent.csrf = ""
    assert (await agent.post(claim))[0] == 403
    agent.csrf = "forged"
    assert (await agent.post(claim))[0] == 403
    agent.csrf = token
    assert (await agent.post(claim, Origin="https://evil.example"))[0] == 403
    status, body = await agent.post(claim, Origin=base_url)
    assert status == 200 and body["agent"] == "alex"


async def test_a_session_cookie_that_is_not_utf8_is_not_signed_in(
    server: TestServer,
    base_url: str,
    add_agent: Callable[[TestServer, str], Any],
    http: aiohttp.ClientSession,
) -> None:
    """Its bytes reach the app as surrogates, which the session lookup could not encode:
    every console route answered 503 "store unavailable" (found by fuzzing)."""
    await add_agent(server, "alex")
    async with http.post(
        f"{base_url}/agent/api/sign-in", json={"name": "alex", "password": PASSWORD}
    ) as resp:
        session_id = resp.cookies["aftercare_agent"].value
    for cookie in [b"\x80", b"\xff" + session_id.encode(), session_id.encode() + b"\xc3"]:
        resp = await raw_request(
            server.port, b"GET", b"/agent/api/me", [(b"Cookie", b"aftercare_agent=" + cookie)]
        )
        assert resp.status == 401, resp
        assert "sign in" in resp.json()["error"]["message"]
    resp = await raw_request(
        server.port, b"GET", b"/agent/api/me", [(b"Cookie", b"aftercare_agent=" + session_id.encode())]
    )
    assert resp.status == 200 and resp.json()["agent"] == "alex"


async def test_a_csrf_token_that_is_not_utf8_is_403(
    server: TestServer,
    base_url: str,
    add_agent: Callable[[TestServer, str], Any],
    http: aiohttp.ClientSession,
) -> None:
    """Comparing it with the session's token encoded it, which failed: a 500 (found by fuzzing)."""
    await add_agent(server, "alex")
    async with http.post(
        f"{base_url}/agent/api/sign-in", json={"name": "alex", "password": PASSWORD}
    ) as resp:
        session_id, csrf = resp.cookies["aftercare_agent"].value, (await resp.json())["csrf"]
    conversation, _ = await waiting_for_a_person(http, base_url, verify=False)
    claim = f"/agent/api/conversations/{conversation.conversation_id}/claim".encode()
    signed_in = [
        (b"Cookie", b"aftercare_agent=" + session_id.encode()),
        (b"Content-Type", b"application/json"),
    ]
    for token in [b"\x80", csrf.encode() + b"\xff"]:
        resp = await raw_request(server.port, b"POST", claim, [*signed_in, (b"X-CSRF-Token", token)], b"{}")
        assert resp.status == 403, resp
        assert "CSRF token" in resp.json()["error"]["message"]
    resp = await raw_request(
        server.port, b"POST", claim, [*signed_in, (b"X-CSRF-Token", csrf.encode())], b"{}"
    )
    assert resp.status == 200 and resp.json()["agent"] == "alex"


async def test_an_agent_message_that_is_not_valid_unicode_is_400(
    server: TestServer,
    base_url: str,
    http: aiohttp.ClientSession,
    add_agent: Callable[[TestServer, str], Any],
    agent_client: Callable[[str], AgentClient],
) -> None:
    """An unpaired surrogate (JSON's "\\ud800") in the text failed where the message was
    stored: a 500 (found by fuzzing). The agent is told why, and the next message goes through."""
    await add_agent(server, "alex")
    agent = agent_client(base_url)
    await agent.sign_in("alex")
    conversation, _ = await waiting_for_a_person(http, base_url, verify=False)
    path = f"{base_url}/agent/api/conversations/{conversation.conversation_id}"
    assert (await agent.post(f"/conversations/{conversation.conversation_id}/claim"))[0] == 200
    headers = {"X-CSRF-Token": agent.csrf, "Content-Type": "application/json"}
    async with agent.session.post(
        f"{path}/messages", data=b'{"text": "hi \\ud800"}', headers=headers
    ) as resp:
        assert resp.status == 400
        assert "unpaired surrogate" in (await resp.json())["error"]["message"]
    status, _ = await agent.post(
        f"/conversations/{conversation.conversation_id}/messages", {"text": "Hi, I'm on it."}
    )
    assert status == 200
    await conversation.poll_until(lambda a: a.get("text") == "Hi, I'm on it.")


async def test_another_agents_conversation_is_off_limits(
    server: TestServer,
    base_url: str,
    http: aiohttp.ClientSession,
    add_agent: Callable[[TestServer, str], Any],
    agent_client: Callable[[str], AgentClient],
) -> None:
    await add_agent(server, "alex")
    await add_agent(server, "sam")
    alex, sam = agent_client(base_url), agent_client(base_url)
    await alex.sign_in("alex")
    await sam.sign_in("sam")
    conversation, _ = await waiting_for_a_person(http, base_url, verify=False)
    path = f"/conversations/{conversation.conversation_id}"
    assert (await sam.get(path))[0] == 200  # waiting: every agent may look
    assert (await alex.post(f"{path}/claim"))[0] == 200
    assert (await sam.get(path))[0] == 403
    assert (await sam.post(f"{path}/claim"))[0] == 409
    assert (await sam.post(f"{path}/messages", {"text": "hello"}))[0] == 403
    assert (await sam.post(f"{path}/close"))[0] == 403
    assert conversation.conversation_id not in [e["conversation_id"] for e in await sam.queue()]
    assert conversation.conversation_id in [e["conversation_id"] for e in await alex.queue()]
    assert (await alex.post(f"{path}/messages", {"text": "   "}))[0] == 400


async def test_accounts_need_a_fair_name_and_password(server: TestServer) -> None:
    agents = Agents(server.app[STORES].state)
    for name, password in [("A B", PASSWORD), ("ok-name", "short"), ("x", PASSWORD)]:
        with pytest.raises(AgentError):
            await agents.add(name, password)
    account = await agents.add("casey", PASSWORD)
    assert account.password_hash.startswith("$argon2id$") and PASSWORD not in account.password_hash
    with pytest.raises(AgentError, match="already exists"):
        await agents.add("casey", PASSWORD)
