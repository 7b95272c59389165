"""An agent's side of the console API, as the console page uses it, and helpers to
bring a Direct Line conversation to a person."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.handoff.agents import Agents
from bot.service import STORES
from tests.support.directline import DirectLineConversation, answers, bot_replies, start_conversation

PASSWORD = "correct horse battery"
NOAH_EMAIL, NOAH_ORDER = "noah.brown7922@example.com", "#W7678072"


@dataclass
class AgentClient:
    """A signed-in agent: its own cookie jar, and the CSRF token of its session."""

    session: aiohttp.ClientSession
    base_url: str
    csrf: str = ""

    async def sign_in(self, name: str, password: str = PASSWORD) -> int:
        async with self.session.post(
            f"{self.base_url}/agent/api/sign-in", json={"name": name, "password": password}
        ) as resp:
            if resp.status == 200:
                self.csrf = (await resp.json())["csrf"]
            return resp.status

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(f"{self.base_url}/agent/api{path}") as resp:
            return resp.status, await resp.json()

    async def post(self, path: str, body: dict[str, Any] | None = None, **headers: str) -> tuple[int, Any]:
        sent = {"X-CSRF-Token": self.csrf, **headers}
        async with self.session.post(
            f"{self.base_url}/agent/api{path}", json=body or {}, headers=sent
        ) as resp:
            return resp.status, await resp.json()

    async def queue(self) -> list[dict[str, Any]]:
        status, body = await self.get("/queue")
        assert status == 200, body
        return list(body["queue"])


@pytest.fixture
def add_agent() -> Callable[[TestServer, str], Any]:
    async def add(server: TestServer, name: str) -> None:
        await Agents(server.app[STORES].state).add(name, PASSWORD, name.title())

    return add


@pytest.fixture
async def agent_client() -> AsyncIterator[Callable[[str], AgentClient]]:
    sessions: list[aiohttp.ClientSession] = []

    def make(base_url: str) -> AgentClient:
        # unsafe=True: the test server is an IP address, whose cookies aiohttp otherwise drops.
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(session)
        return AgentClient(session, base_url)

    yield make
    for session in sessions:
        await session.close()


async def say(
    conversation: DirectLineConversation, text: str, within_s: float = 15.0
) -> list[dict[str, Any]]:
    """Sends `text` and returns the bot's messages answering it."""
    activity_id, _ = await conversation.send(text)
    received = await conversation.poll_until(answers(activity_id), within_s)
    await asyncio.sleep(0.2)  # a second reply of the same turn
    received += await conversation.poll()
    return [a for a in bot_replies(received) if a.get("replyToId") == activity_id]


def texts(activities: list[dict[str, Any]]) -> str:
    return "\n".join(str(a.get("text", "")) for a in activities)


async def waiting_for_a_person(
    http: aiohttp.ClientSession, base_url: str, *, verify: bool = True
) -> tuple[DirectLineConversation, str]:
    """A customer (verified as Noah Brown) who asked for a person; (conversation, bot's words)."""
    conversation = await start_conversation(http, base_url)
    if verify:
        await say(conversation, NOAH_EMAIL)
    replies = await say(conversation, "I want to talk to a real person please")
    return conversation, texts(replies)
