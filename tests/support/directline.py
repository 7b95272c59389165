"""A small Direct Line 3.0 client for tests and benchmarks, speaking HTTP like Web Chat does."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import aiohttp

_client_ids = itertools.count(1)


@dataclass
class DirectLineConversation:
    session: aiohttp.ClientSession
    base_url: str
    conversation_id: str
    token: str
    stream_url: str
    watermark: str | None = None
    seen_ids: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, suffix: str = "") -> str:
        return f"{self.base_url}/v3/directline/conversations/{self.conversation_id}{suffix}"

    async def send(self, text: str, **extra: Any) -> tuple[str, str]:
        """Posts a message as Web Chat does; returns (server id, client activity id)."""
        client_id = f"client-{next(_client_ids)}"
        activity = {
            "type": "message",
            "text": text,
            "from": {"id": "webchat-user", "role": "user"},
            "channelData": {"clientActivityID": client_id},
            **extra,
        }
        async with self.session.post(self.url("/activities"), json=activity, headers=self.headers) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["id"], client_id

    async def poll(self) -> list[dict[str, Any]]:
        params = {"watermark": self.watermark or ""}
        async with self.session.get(self.url("/activities"), params=params, headers=self.headers) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        self.watermark = body["watermark"]
        self.seen_ids.extend(a["id"] for a in body["activities"])
        return list(body["activities"])

    async def poll_until(self, predicate: Any, within_s: float = 10.0) -> list[dict[str, Any]]:
        """Polls until some activity satisfies `predicate`; returns everything received."""
        received: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            received.extend(await self.poll())
            if any(predicate(a) for a in received):
                return received
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no matching activity within {within_s}s; got {received}")
            await asyncio.sleep(0.05)


async def start_conversation(session: aiohttp.ClientSession, base_url: str) -> DirectLineConversation:
    """Gets a token from the page's token endpoint and starts the conversation, as Web Chat does."""
    async with session.post(f"{base_url}/api/directline/token") as resp:
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["token"]
    async with session.post(
        f"{base_url}/v3/directline/conversations", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 201, await resp.text()
        body = await resp.json()
    return DirectLineConversation(session, base_url, body["conversationId"], body["token"], body["streamUrl"])


def bot_replies(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in activities if a.get("from", {}).get("role") == "bot" and a.get("type") == "message"]


def answers(activity_id: str) -> Any:
    """A predicate: the bot's message (not its typing indicator) answering `activity_id`."""
    return lambda a: a.get("replyToId") == activity_id and a.get("type") == "message"
