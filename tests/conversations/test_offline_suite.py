"""The conversation suites (tests/conversations/*.yaml) against the offline engine, each
over a fresh copy of the full retail dataset in SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.retail import RetailService
from bot.store.sqlite import SqliteStore
from dialogs import OfflineResources, build_offline_engine
from dialogs.conversations import Conversation, load_conversations, run_conversation
from dialogs.intents import load_intents

SUITES = Path(__file__).resolve().parent
CASES = load_conversations([SUITES])


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conversation(
    case: Conversation, retail_sqlite: SqliteStore, offline_resources: OfflineResources
) -> None:
    engine = build_offline_engine(RetailService(retail_sqlite), offline_resources)
    result = await run_conversation(case, engine, retail_sqlite)
    assert result.passed, "\n".join([*result.failures, "", *result.transcript])


def test_the_suites_cover_every_intent() -> None:
    tagged = {tag for case in CASES for tag in case.tags}
    missing = set(load_intents()) - tagged
    assert not missing, f"no conversation is tagged with {sorted(missing)}"
    assert len(CASES) >= 40


def test_the_suites_cover_refusals_corrections_and_channels() -> None:
    tagged = {tag for case in CASES for tag in case.tags}
    assert {"refusal", "correction", "security", "handoff", "voice", "msteams", "gift_card"} <= tagged
