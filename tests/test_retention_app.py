"""RETENTION_DAYS in the running app: the setting, validated and matching the shop's
privacy policy, and the purge of expired conversations at start-up."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.retention import DAY_S
from bot.service import SIGNING_KEY_DOC, STORES, create_app
from bot.settings import Settings, load_settings
from dialogs import OfflineResources
from prompts import KNOWLEDGE_DIR
from shop.errors import ConfigurationError
from shop.store.sqlite import SqliteStore
from tests.handoff.conftest import NOAH_EMAIL, say
from tests.support.directline import start_conversation


def test_retention_days_is_validated_and_defaults_to_the_privacy_policy(
    make_settings: Callable[..., Settings],
) -> None:
    assert make_settings().retention_days == 90
    policy = (KNOWLEDGE_DIR / "privacy.md").read_text("utf-8")
    # The shop's policy document is static text: it names the default.
    assert re.search(r"for up to 90 days", policy)
    for bad in ("0", "3651", "ninety"):
        with pytest.raises(ConfigurationError, match="RETENTION_DAYS"):
            load_settings(_env_file=None, RETENTION_DAYS=bad, SEED_ON_START=False)


async def test_the_app_purges_expired_conversations_when_it_starts(
    make_settings: Callable[..., Settings],
    offline_resources: OfflineResources,
    http: aiohttp.ClientSession,
) -> None:
    """A conversation last written 91 days ago is gone right after start-up; one from
    yesterday and the signing key stay, and the app serves a new conversation."""
    settings = make_settings()
    for age, conversation in ((91, "expired"), (1, "recent")):
        then = time.time() - age * DAY_S
        old = await SqliteStore.open(settings.sqlite_path, clock=lambda then=then: then)
        await old.write_state(f"directline/conversations/{conversation}", {"dialog": {"turn": 1}})
        await old.insert_state(f"dl/{conversation}", {"user_id": "dl_x"})
        await old.aclose()

    server = TestServer(create_app(settings, offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()
    try:
        state = server.app[STORES].state
        for _ in range(100):
            if await state.read_state("dl/expired") is None:
                break
            await asyncio.sleep(0.05)
        assert await state.read_state("directline/conversations/expired") is None
        assert await state.read_state("dl/expired") is None
        assert await state.read_state("directline/conversations/recent") is not None
        assert await state.read_state(SIGNING_KEY_DOC) is not None
        conversation = await start_conversation(http, str(server.make_url("")).rstrip("/"))
        assert "Noah" in " ".join(str(a.get("text")) for a in await say(conversation, NOAH_EMAIL))
    finally:
        await server.close()
