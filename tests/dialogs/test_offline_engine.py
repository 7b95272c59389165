"""The offline engine as the bot uses it: replies shaped per channel, state that is
plain JSON between turns, and the pieces the YAML suites do not look at."""

from __future__ import annotations

import pytest

from dialogs import OfflineEngine, OfflineResources, build_offline_engine
from dialogs.cards import finalize, speakable
from dialogs.turn import Channel, DialogState, Reply
from shop.errors import StoreUnavailable
from shop.retail import RetailService
from shop.store.sqlite import SqliteStore


@pytest.fixture
def engine(retail_sqlite: SqliteStore, offline_resources: OfflineResources) -> OfflineEngine:
    return build_offline_engine(RetailService(retail_sqlite), offline_resources)


async def say(engine: OfflineEngine, state: DialogState, text: str, channel: str = "webchat") -> list[Reply]:
    # Round-trip the state through JSON every turn, as the bot stores it.
    replies = await engine.respond(text, None, state, Channel(id=channel))
    restored = DialogState.model_validate_json(state.model_dump_json())
    assert restored == state
    return replies


async def test_a_proposal_shows_yes_and_no_and_a_card_tied_to_it(engine: OfflineEngine) -> None:
    state = DialogState()
    await say(engine, state, "evelyn.ito2168@example.com")
    [reply] = await say(engine, state, "cancel my order, ordered by mistake")
    assert state.pending_action is not None
    assert reply.suggested_actions == ["Yes", "No"]
    assert reply.card is not None
    submit = reply.card["actions"][0]["data"]
    assert submit == {"action": "confirm", "pending_id": state.pending_action.id}
    assert state.pending_action.summary in reply.text
    [done] = await engine.respond("", submit, state, Channel(id="webchat"))
    assert "cancelled" in done.text and state.actions[-1].ok


async def test_voice_gets_no_cards_or_buttons_and_speakable_text(engine: OfflineEngine) -> None:
    state = DialogState()
    await say(engine, state, "noah.brown7922@example.com", channel="voice")
    replies = await say(engine, state, "what's the status of my order", channel="voice")
    assert all(r.card is None and not r.suggested_actions for r in replies)
    assert "W 7 6 7 8 0 7 2" in replies[-1].speak and "#" not in replies[-1].speak


async def test_every_reply_says_which_engine_answered_and_the_transcript_keeps_it(
    engine: OfflineEngine,
) -> None:
    state = DialogState()
    replies = await say(engine, state, "hello")
    assert all(r.engine == "offline" for r in replies)
    assert [e.role for e in state.transcript] == ["user", "bot"]
    assert state.transcript[0].intent == "greeting" and state.transcript[1].engine == "offline"


async def test_no_order_data_reaches_an_unverified_customer(engine: OfflineEngine) -> None:
    state = DialogState()
    for text in [
        "what's in order #W7678072",
        "list my orders",
        "track W7678072",
        "cancel #W6207110 by mistake",
    ]:
        replies = await say(engine, state, text)
        said = " ".join(r.text for r in replies)
        assert "Kettle" not in said and "Backpack" not in said and state.pending_action is None
    assert not any(call.ok for call in state.tool_calls if call.tool.startswith(("get_", "track_")))


async def test_handoff_is_flagged_with_a_reason(engine: OfflineEngine) -> None:
    state = DialogState()
    [reply] = await say(engine, state, "connect me to an agent")
    assert reply.handoff_requested and reply.handoff_reason and state.handoff_requested


def test_speakable_text() -> None:
    assert speakable("**Order #W7678072** is delivered.\n- Tracking 517177699738") == (
        "Order W 7 6 7 8 0 7 2 is delivered. Tracking 5 1 7 1, 7 7 6 9, 9 7 3 8."
    )


def test_finalize_shapes_per_channel() -> None:
    reply = Reply(text="Hi", card={"type": "AdaptiveCard"}, suggested_actions=["Yes"])
    [teams] = finalize([reply], Channel(id="msteams"), "offline")
    assert teams.card is not None and not teams.suggested_actions
    [web] = finalize([reply], Channel(id="webchat"), "gpt")
    assert web.card is not None and web.suggested_actions == ["Yes"] and web.engine == "gpt"
    [sms] = finalize([reply], Channel(id="sms"), "offline")
    assert sms.card is None and not sms.suggested_actions and sms.speak == "Hi."


async def test_a_store_outage_is_not_read_as_not_found(
    engine: OfflineEngine, retail_sqlite: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = DialogState()
    await say(engine, state, "ivan.santos3158@example.com")
    await say(engine, state, "I want to cancel an order")
    asked = state.flow.model_copy(deep=True) if state.flow else None

    async def down(order_id: str) -> None:
        raise StoreUnavailable("the database is restarting")

    monkeypatch.setattr(retail_sqlite, "get_order", down)
    [reply] = await say(engine, state, "#W8770097")
    assert "isn't answering" in reply.text and "couldn't find" not in reply.text
    assert state.flow == asked  # the question still stands for the retry
    monkeypatch.undo()
    [retry] = await say(engine, state, "#W8770097")
    assert "#W8770097" in retry.text and "why" in retry.text


async def test_a_task_left_by_another_engine_is_not_resumed(engine: OfflineEngine) -> None:
    state = DialogState()
    await say(engine, state, "ivan.santos3158@example.com")
    await say(engine, state, "I want to cancel an order")
    assert state.flow is not None
    state.record_bot([Reply(text="(the GPT dialog answered something else)", engine="gpt")])
    replies = await say(engine, state, "thanks")
    assert state.flow is None and "great day" in replies[-1].text
