"""Direct Line while its store is down: clients are told to retry (503, never a 500), and
open streams stay open and carry on once the store answers again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.channels.directline import DirectLineService
from bot.channels.tokens import TokenSigner
from bot.http_errors import error_middleware
from shop.errors import StoreUnavailable
from shop.store.base import JsonDict, Versioned
from shop.store.sqlite import SqliteStore


class SwitchableStore:
    """A state store that can be switched off; notes when something tried to use it then."""

    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.down = False
        self.refused = asyncio.Event()

    def _check(self) -> None:
        if self.down:
            self.refused.set()
            raise StoreUnavailable("the store is switched off")

    async def read_state(self, key: str) -> Versioned | None:
        self._check()
        return await self._inner.read_state(key)

    async def write_state(self, key: str, doc: JsonDict, *, etag: str | None = None) -> str:
        self._check()
        return await self._inner.write_state(key, doc, etag=etag)

    async def insert_state(self, key: str, doc: JsonDict) -> str:
        self._check()
        return await self._inner.insert_state(key, doc)

    async def delete_state(self, key: str) -> None:
        self._check()
        await self._inner.delete_state(key)

    async def ping(self) -> None:
        self._check()

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SwitchableStore]:
    switchable = SwitchableStore(await SqliteStore.open(tmp_path / "log.sqlite3"))
    yield switchable
    await switchable.aclose()


@pytest.fixture
async def base_url(store: SwitchableStore) -> AsyncIterator[str]:
    async def no_bot(activity: dict[str, Any], deliver: Any) -> None:
        return None

    directline = DirectLineService(TokenSigner("", 1800), store, no_bot, bot_id="bot", bot_name="Bot")
    app = web.Application(middlewares=[error_middleware])
    app.add_routes(directline.routes())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await directline.aclose()
    await server.close()


async def test_a_message_sent_while_the_store_is_down_is_refused_with_503_and_retry_after(
    http: aiohttp.ClientSession, base_url: str, store: SwitchableStore
) -> None:
    async with http.post(f"{base_url}/v3/directline/conversations") as resp:
        started = await resp.json()
    store.down = True
    async with http.post(
        f"{base_url}/v3/directline/conversations/{started['conversationId']}/activities",
        json={"type": "message", "text": "where is my order?"},
        headers={"Authorization": f"Bearer {started['token']}"},
    ) as resp:
        body = await resp.json()
    assert resp.status == 503
    assert resp.headers["Retry-After"].isdigit()
    assert body["error"]["code"] == "ServiceUnavailable"
    assert "temporarily unavailable" in body["error"]["message"]
    assert "StoreUnavailable" not in json.dumps(body) and "switched off" not in json.dumps(body)


async def test_an_open_stream_survives_a_store_outage_and_delivers_what_comes_after(
    http: aiohttp.ClientSession, base_url: str, store: SwitchableStore
) -> None:
    async with http.post(f"{base_url}/v3/directline/conversations") as resp:
        started = await resp.json()
    headers = {"Authorization": f"Bearer {started['token']}"}
    activities = f"{base_url}/v3/directline/conversations/{started['conversationId']}/activities"
    async with http.ws_connect(started["streamUrl"]) as ws:
        store.down = True
        await asyncio.wait_for(store.refused.wait(), 10)  # the stream's poll met the outage
        store.down = False
        async with http.post(
            activities, json={"type": "message", "text": "still there?"}, headers=headers
        ) as resp:
            assert resp.status == 200
            sent = (await resp.json())["id"]
        while True:
            message = await asyncio.wait_for(ws.receive(), 10)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            if message.data and sent in {a["id"] for a in json.loads(message.data)["activities"]}:
                break
