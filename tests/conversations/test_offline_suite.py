"""The conversation suites (evals/suites/*.yaml, the ones `aftercare eval conversations`
runs) against the offline engine behind the content-safety check, as the app runs it, each
over a fresh copy of the retail dataset in SQLite."""

from __future__ import annotations

import pytest

from dialogs import OfflineResources, build_offline_engine
from dialogs.intents import load_intents
from dialogs.safety import SafetyGuard
from evals.conversations import SUITES_DIR, Conversation, load_conversations, run_conversation
from providers.safety.local import LocalContentSafety
from shop.retail import RetailService
from shop.store.sqlite import SqliteStore

CASES = load_conversations([SUITES_DIR])


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conversation(
    case: Conversation, retail_sqlite: SqliteStore, offline_resources: OfflineResources
) -> None:
    engine = SafetyGuard(
        build_offline_engine(RetailService(retail_sqlite), offline_resources), LocalContentSafety()
    )
    result = await run_conversation(case, engine, retail_sqlite)
    assert result.passed, "\n".join([*result.failures, "", *result.transcript])


def test_the_suites_cover_every_intent() -> None:
    tagged = {tag for case in CASES for tag in case.tags}
    missing = set(load_intents()) - tagged
    assert not missing, f"no conversation is tagged with {sorted(missing)}"
    assert len(CASES) >= 40


def test_the_suites_cover_refusals_corrections_and_channels() -> None:
    tagged = {tag for case in CASES for tag in case.tags}
    assert {
        "refusal",
        "correction",
        "security",
        "handoff",
        "voice",
        "msteams",
        "gift_card",
        "safety",
    } <= tagged
