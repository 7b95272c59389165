"""A burst of customers at once: 200 conversations of 10 messages against one app process
(offline engine, SQLite), through Direct Line as Web Chat speaks it.

Half the customers wait for each answer before typing the next message; the other half
send all ten at once. Every customer must get the answers a customer alone gets (the
same replies, exactly once each, in the order asked), and the stored conversation state
must have counted all ten turns.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from shop.store.sqlite import SqliteStore
from tests.reliability.conftest import Apps
from tests.reliability.harness import (
    answers,
    client_session,
    dialog_turns,
    order_problems,
    talk,
    transcript,
)

CONVERSATIONS = 200
# Ten read-only requests by one verified customer: every conversation should be answered
# word for word as the lone reference conversation is.
SCRIPT = [
    "Hi, where is my order?",
    "sofia.rossi2645@example.com",
    "#W5918442",
    "What is your return policy?",
    "How long does shipping take?",
    "And order #W5500815?",
    "Do you sell laptops?",
    "What's the status of #W8535951?",
    "How do refunds work?",
    "thanks, that's all",
]
WITHIN_S = 150.0
# Start-up (about 20 s: the embedding model) plus the burst, with room for a busy machine.
pytestmark = pytest.mark.timeout(240)


async def test_a_burst_of_200_conversations_is_answered_exactly_once_in_order(
    apps: Apps, sqlite_env: dict[str, str]
) -> None:
    app = await apps.start(sqlite_env)
    async with client_session() as session:
        reference = await talk(session, app.url, SCRIPT, burst=False, within_s=30)
        expected = answers(await transcript(reference.conversation), reference.sent)
        assert all(expected), f"the lone customer got no answer to some message: {expected}"

        started = time.perf_counter()
        async with asyncio.timeout(WITHIN_S):
            talks = await asyncio.gather(
                *(
                    talk(session, app.url, SCRIPT, burst=n % 2 == 1, within_s=WITHIN_S)
                    for n in range(CONVERSATIONS)
                )
            )
        elapsed = time.perf_counter() - started
        transcripts = await asyncio.gather(*(transcript(t.conversation) for t in talks))

    wrong = {
        t.conversation.conversation_id: got
        for t, activities in zip(talks, transcripts, strict=True)
        if (got := answers(activities, t.sent)) != expected
    }
    assert not wrong, (
        f"{len(wrong)} conversations were answered differently, e.g. {next(iter(wrong.items()))}"
    )
    disordered = [p for t, a in zip(talks, transcripts, strict=True) for p in order_problems(a, t.sent)]
    assert not disordered, disordered[:5]
    assert sum(t.repeated_on_stream for t in talks) == 0, "the stream delivered some activity twice"

    store = await SqliteStore.open(sqlite_env["SQLITE_PATH"])
    try:
        turns = await dialog_turns(store, [t.conversation.conversation_id for t in talks])
    finally:
        await store.aclose()
    assert set(turns.values()) == {len(SCRIPT)}, {c: n for c, n in turns.items() if n != len(SCRIPT)}

    assert app.running
    assert app.error_lines() == []
    total = CONVERSATIONS * len(SCRIPT)
    print(f"\n{total} turns in {elapsed:.1f} s: {total / elapsed:.0f} turns/s")
