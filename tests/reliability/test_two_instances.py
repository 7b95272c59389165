"""Two app instances on one store (a SQLite file), each conversation's messages posted
alternately to both, in bursts, so the two run turns of the same conversation at the
same moment. Every turn must be counted once in the stored state (no lost update, no
turn applied twice), every message answered exactly once, and both instances must show
the customer the same transcript."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from shop.store.sqlite import SqliteStore
from tests.reliability.conftest import Apps
from tests.reliability.harness import (
    StreamWatcher,
    client_session,
    dialog_turns,
    is_bot_message,
    remembered_messages,
    transcript,
    turn_finished,
)
from tests.support.directline import DirectLineConversation, start_conversation

CONVERSATIONS = 30
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

# Two start-ups one after the other (about 20 s each) plus the conversations.
pytestmark = pytest.mark.timeout(180)


def on(conversation: DirectLineConversation, base_url: str) -> DirectLineConversation:
    """The same conversation (same token), talked to through another instance."""
    return DirectLineConversation(
        conversation.session,
        base_url,
        conversation.conversation_id,
        conversation.token,
        conversation.stream_url,
    )


async def test_two_instances_on_one_store_count_every_turn_and_answer_each_message_once(
    apps: Apps, sqlite_env: dict[str, str]
) -> None:
    # One after the other, as a rolling deployment adds an instance to a running one.
    first = await apps.start(sqlite_env, name="instance-a")
    second = await apps.start(sqlite_env, name="instance-b")

    async def customer(client: aiohttp.ClientSession) -> tuple[DirectLineConversation, list[str]]:
        via_a = await start_conversation(client, first.url)
        via_b = on(via_a, second.url)
        sent: list[str] = []
        async with StreamWatcher(via_a) as stream:
            # Pairs sent back to back, one to each instance; the next pair once both are answered.
            for n in range(0, len(SCRIPT), 2):
                pair = await asyncio.gather(via_a.send(SCRIPT[n]), via_b.send(SCRIPT[n + 1]))
                sent.extend(server_id for server_id, _ in pair)
                await stream.wait_for_turns(sent[-2:], within_s=60)
        return via_a, sent

    async with client_session() as client:
        async with asyncio.timeout(150):
            talks = await asyncio.gather(*(customer(client) for _ in range(CONVERSATIONS)))
        seen_on_a = await asyncio.gather(*(transcript(c) for c, _ in talks))
        seen_on_b = await asyncio.gather(*(transcript(on(c, second.url)) for c, _ in talks))

    for (conversation, sent), activities, other in zip(talks, seen_on_a, seen_on_b, strict=True):
        assert [a["id"] for a in activities] == [a["id"] for a in other], "the instances disagree"
        finished = {
            server_id: sum(
                1
                for a in activities
                if is_bot_message(a)
                and a.get("replyToId") == server_id
                and a.get("inputHint") == "expectingInput"
            )
            for server_id in sent
        }
        assert all(turn_finished(activities, s) for s in sent)
        assert set(finished.values()) == {1}, (conversation.conversation_id, finished)

    store = await SqliteStore.open(sqlite_env["SQLITE_PATH"])
    try:
        turns = await dialog_turns(store, [c.conversation_id for c, _ in talks])
        miscounted = {c: n for c, n in turns.items() if n != len(SCRIPT)}
        remembered = {c: await remembered_messages(store, c) for c in list(miscounted)[:3]}
    finally:
        await store.aclose()
    assert not miscounted, f"turns lost: {miscounted}; the state remembers only {remembered}"
    assert first.running and second.running
    assert first.error_lines() == [] and second.error_lines() == []
