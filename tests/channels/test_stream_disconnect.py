"""A Web Chat client that vanishes while an activity is on its way to it (a closed tab, a
lost network) ends its stream quietly: no 'unhandled error' with a stack trace, since it
resumes from its watermark when it comes back and loses nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.directline import DirectLineService
from bot.channels.tokens import TokenSigner
from shop.store.sqlite import SqliteStore


class VanishedClient:
    """A WebSocket whose peer is gone: every send fails as aiohttp's does then."""

    closed = False

    def __init__(self) -> None:
        self.attempts = 0

    async def send_json(self, data: Any, **options: Any) -> None:
        self.attempts += 1
        raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")

    def __aiter__(self) -> VanishedClient:
        return self

    async def __anext__(self) -> Any:
        await asyncio.Event().wait()  # the client says nothing


async def _no_bot(activity: dict[str, Any], deliver: Any) -> None:
    return None


@pytest.fixture
async def directline(tmp_path: Path) -> AsyncIterator[DirectLineService]:
    store = await SqliteStore.open(tmp_path / "log.sqlite3")
    service = DirectLineService(TokenSigner("", 1800), store, _no_bot, bot_id="bot", bot_name="Bot")
    yield service
    await service.aclose()
    await store.aclose()


@pytest.mark.parametrize("in_backlog", [True, False], ids=["replaying the backlog", "pushing a new activity"])
async def test_a_vanished_client_ends_its_stream_without_an_error(
    directline: DirectLineService, caplog: pytest.LogCaptureFixture, in_backlog: bool
) -> None:
    conversation, _ = await directline.conversations.open("conv-gone", "dl_user")
    await directline.conversations.append(conversation, {"type": "message", "text": "first"})
    client = VanishedClient()
    subscription = conversation.subscribe()
    watermark = None if in_backlog else 0
    with caplog.at_level(logging.WARNING):
        pump = asyncio.create_task(
            directline._pump(client, conversation, subscription, watermark)  # type: ignore[arg-type]
        )
        if not in_backlog:
            await directline.conversations.append(conversation, {"type": "message", "text": "second"})
        await asyncio.wait_for(pump, 5)
    assert client.attempts == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
