"""The GPT dialog over the real `openai` SDK and the scripted model, on the real dataset.

The scripted model plays whatever a model might do (including the wrong things); the
tests check what the customer sees and what happens to the store.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.settings import Settings
from dialogs.gpt import REFUSAL, GptDialog, GptPrompts
from dialogs.turn import Channel, DialogState
from providers.factory import build_chat_model
from shop.retail import RetailService
from shop.store.sqlite import SqliteStore
from tests.support.scripted_openai import ScriptedOpenAI

IVAN_EMAIL = "ivan.santos3158@example.com"
IVAN_PENDING = "#W8770097"  # Office Chair, $544.29, paid with PayPal
NOAH_ORDER = "#W2611340"  # belongs to noah_brown_6181, not Ivan
WEB = Channel(id="webchat")


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


@pytest.fixture
async def dialog(
    scripted: ScriptedOpenAI,
    make_settings: Callable[..., Settings],
    retail_sqlite: SqliteStore,
    offline_engine_factory: Callable[[RetailService], Any],
) -> AsyncIterator[GptDialog]:
    settings = make_settings(
        LLM_PROVIDER="openai",
        OPENAI_BASE_URL=f"{scripted.base_url}/v1",
        LLM_MAX_RETRIES=1,
        LLM_REQUEST_TIMEOUT_S=2,
        LLM_BREAKER_FAILURES=2,
    )
    model = build_chat_model(settings)
    assert model is not None
    retail = RetailService(retail_sqlite)
    offline = offline_engine_factory(retail)
    engine = GptDialog(model, offline.tools, offline, prompts=GptPrompts.load(), max_tool_rounds=4)
    yield engine
    await model.aclose()


async def order_status(store: SqliteStore, order_id: str) -> str:
    order = await store.get_order(order_id)
    assert order is not None
    return str(order.doc["status"])


async def test_verify_then_order_status_with_a_card(scripted: ScriptedOpenAI, dialog: GptDialog) -> None:
    state = DialogState()
    scripted.script(
        tool("find_user_id_by_email", email=IVAN_EMAIL), {"text": "Thanks Ivan, you're verified."}
    )
    [reply] = await dialog.respond(f"hi, I'm {IVAN_EMAIL}", None, state, WEB)
    assert state.verified_user_id == "ivan_santos_6635"
    assert reply.engine == "gpt" and "verified" in reply.text

    scripted.script(
        tool("get_order_details", order_id=IVAN_PENDING), {"text": "Your office chair is pending."}
    )
    [reply] = await dialog.respond(f"where is {IVAN_PENDING}?", None, state, WEB)
    assert "office chair" in reply.text.lower()
    assert reply.card is not None and IVAN_PENDING in json.dumps(reply.card)
    # The tool result the model saw was the real order from the store.
    tool_message = next(m for m in scripted.requests[-1]["messages"] if m["role"] == "tool")
    assert "Office Chair" in tool_message["content"]
    assert state.token_usage["prompt"] > 0 and state.token_usage["completion"] > 0


async def test_nothing_is_read_before_verification(scripted: ScriptedOpenAI, dialog: GptDialog) -> None:
    state = DialogState()
    scripted.script(
        tool("get_order_details", order_id=IVAN_PENDING), {"text": "Could you give me your email?"}
    )
    [reply] = await dialog.respond(f"status of {IVAN_PENDING}", None, state, WEB)
    tool_message = next(m for m in scripted.requests[-1]["messages"] if m["role"] == "tool")
    assert tool_message["content"].startswith("Error:") and "not verified" in tool_message["content"]
    assert "Office Chair" not in json.dumps(scripted.requests[-1])
    assert reply.card is None


async def test_another_customers_order_is_refused_and_unchanged(
    scripted: ScriptedOpenAI, dialog: GptDialog, retail_sqlite: SqliteStore
) -> None:
    state = DialogState(verified_user_id="ivan_santos_6635")
    before = await order_status(retail_sqlite, NOAH_ORDER)
    scripted.script(
        tool("get_order_details", order_id=NOAH_ORDER),
        tool("cancel_pending_order", order_id=NOAH_ORDER, reason="no longer needed"),
        {"text": "I can't find that order on your account."},
    )
    [reply] = await dialog.respond(f"cancel {NOAH_ORDER}", None, state, WEB)
    tool_messages = [m["content"] for m in scripted.requests[-1]["messages"] if m["role"] == "tool"]
    assert all(m.startswith("Error:") for m in tool_messages), tool_messages
    assert state.pending_action is None
    # A "yes" now has nothing to confirm; the model is asked again instead.
    scripted.script({"text": "There is nothing to confirm."})
    await dialog.respond("yes", None, state, WEB)
    assert await order_status(retail_sqlite, NOAH_ORDER) == before
    assert "can't find" in reply.text


async def test_an_action_runs_only_after_the_customers_explicit_yes(
    scripted: ScriptedOpenAI, dialog: GptDialog, retail_sqlite: SqliteStore
) -> None:
    state = DialogState(verified_user_id="ivan_santos_6635")
    # The model claims it is done; the code still only proposes, and shows the exact summary.
    scripted.script(
        tool("cancel_pending_order", order_id=IVAN_PENDING, reason="no longer needed"),
        {"text": "All done, your order is cancelled!"},
    )
    [proposal] = await dialog.respond(f"cancel {IVAN_PENDING}, I don't need it", None, state, WEB)
    assert await order_status(retail_sqlite, IVAN_PENDING) == "pending"
    assert state.pending_action is not None
    assert state.pending_action.summary in proposal.text and "$544.29" in proposal.text
    assert proposal.card is not None and proposal.suggested_actions == ["Yes", "No"]

    # Anything but a yes drops it, and the store is unchanged.
    scripted.script({"text": "Okay, what would you like instead?"})
    await dialog.respond("hmm, actually maybe later", None, state, WEB)
    assert state.pending_action is None
    assert await order_status(retail_sqlite, IVAN_PENDING) == "pending"

    # Proposed again and confirmed with a yes: it runs, without asking the model.
    scripted.script(
        tool("cancel_pending_order", order_id=IVAN_PENDING, reason="no longer needed"), {"text": "Shall I?"}
    )
    await dialog.respond("ok cancel it after all", None, state, WEB)
    calls_before_yes = len(scripted.requests)
    [done] = await dialog.respond("yes please", None, state, WEB)
    assert len(scripted.requests) == calls_before_yes
    # The yes needs no model: the shared engine runs the action and says what happened.
    assert done.text.startswith("Done.") and "cancelled" in done.text and done.engine == "offline"
    assert await order_status(retail_sqlite, IVAN_PENDING) == "cancelled"
    assert state.actions[-1].tool == "cancel_pending_order" and state.actions[-1].ok


async def test_unknown_tool_and_bad_json_are_reported_to_the_model(
    scripted: ScriptedOpenAI, dialog: GptDialog
) -> None:
    state = DialogState(verified_user_id="ivan_santos_6635")
    scripted.script(
        {"tool_calls": [{"name": "delete_all_orders", "arguments": {}}]},
        {"tool_calls": [{"name": "get_order_details", "arguments": "{order_id: oops"}]},
        {"text": "Sorry, which order do you mean?"},
    )
    [reply] = await dialog.respond("do something", None, state, WEB)
    tool_messages = [m["content"] for m in scripted.requests[-1]["messages"] if m["role"] == "tool"]
    assert "no tool named delete_all_orders" in tool_messages[0]
    assert "not valid JSON" in tool_messages[1]
    assert reply.text == "Sorry, which order do you mean?"


async def test_a_looping_model_is_stopped_and_the_offline_engine_answers(
    scripted: ScriptedOpenAI, dialog: GptDialog
) -> None:
    state = DialogState(verified_user_id="ivan_santos_6635")
    scripted.responder = lambda body: tool("list_all_product_types")
    replies = await dialog.respond("what is the return policy?", None, state, WEB)
    assert len(scripted.requests) == 5  # first call + 4 tool rounds, then stopped
    assert replies and all(r.engine == "offline" for r in replies)
    assert "return" in " ".join(r.text for r in replies).lower()


async def test_content_filter_gets_a_polite_refusal(scripted: ScriptedOpenAI, dialog: GptDialog) -> None:
    state = DialogState()
    scripted.script({"content_filter": "prompt"})
    [reply] = await dialog.respond("something the filter blocks", None, state, WEB)
    assert reply.text == REFUSAL and reply.engine == "gpt"


async def test_failing_endpoint_falls_back_then_recovers(scripted: ScriptedOpenAI, dialog: GptDialog) -> None:
    state = DialogState()
    scripted.script(*[{"status": 500}] * 4)
    first = await dialog.respond("what is your return policy?", None, state, WEB)
    assert first and all(r.engine == "offline" for r in first)
    second = await dialog.respond("and the warranty?", None, state, WEB)
    assert all(r.engine == "offline" for r in second)
    # The breaker is open now: the endpoint is not called while it cools down.
    calls = len(scripted.requests)
    await dialog.respond("thanks", None, state, WEB)
    assert len(scripted.requests) == calls
    engines = [e.engine for e in state.transcript if e.role == "bot"]
    assert engines and set(engines) == {"offline"}
