"""The GPT dialog on the behaviours of the either/or, aside, several-request and complaint
suites: with a scripted model that does what a good model does for a complaint (the
policy, the case written up for a person, a replacement through the exchange tool), and
with the model endpoint down, where its fallback, the offline engine, answers every turn
from the state the GPT dialog keeps and must pass the suites' own checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.settings import Settings
from dialogs.gpt import GptDialog, GptPrompts
from dialogs.turn import Channel, DialogState
from evals.conversations import SUITES_DIR, Conversation, load_conversations, run_conversation
from providers.factory import build_chat_model
from providers.llm import ChatModel
from shop.retail import RetailService
from shop.store.sqlite import SqliteStore
from tests.support.scripted_openai import ScriptedOpenAI

# The suites written for these behaviours (evals/suites); the older ones run through the
# GPT dialog's fallback elsewhere only as far as their own tests go.
SUITES = ("choices.yaml", "asides.yaml", "several.yaml", "complaints.yaml")
CASES = load_conversations([SUITES_DIR / name for name in SUITES])
WEB = Channel(id="webchat")
IVAN_ROSSI = "ivan.rossi1946@example.com"  # one delivered order, #W7008160 (Hiking Boots)
NOAH = "noah.brown7922@example.com"  # #W7678072, delivered: Electric Kettle, Gaming Mouse, Backpack
KETTLE = "2323972008"


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


@pytest.fixture
async def model(scripted: ScriptedOpenAI, make_settings: Callable[..., Settings]) -> AsyncIterator[ChatModel]:
    settings = make_settings(
        LLM_PROVIDER="openai",
        OPENAI_BASE_URL=f"{scripted.base_url}/v1",
        LLM_MAX_RETRIES=0,
        LLM_REQUEST_TIMEOUT_S=2,
        LLM_BREAKER_FAILURES=1,
    )
    chat_model = build_chat_model(settings)
    assert chat_model is not None
    yield chat_model
    await chat_model.aclose()


@pytest.fixture
def dialog(
    model: ChatModel, retail_sqlite: SqliteStore, offline_engine_factory: Callable[[RetailService], Any]
) -> GptDialog:
    offline = offline_engine_factory(RetailService(retail_sqlite))
    return GptDialog(model, offline.tools, offline, prompts=GptPrompts.load(), max_tool_rounds=6)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_the_suites_through_the_gpt_dialog_with_its_model_down(
    case: Conversation, scripted: ScriptedOpenAI, dialog: GptDialog, retail_sqlite: SqliteStore
) -> None:
    scripted.responder = lambda body: {"status": 503}
    result = await run_conversation(case, dialog, retail_sqlite)
    assert result.passed, "\n".join([*result.failures, "", *result.transcript])
    assert all(line.startswith(("user:", "bot[offline]:")) for line in result.transcript)


async def test_a_lost_parcel_goes_to_a_person_with_the_case_from_the_model(
    scripted: ScriptedOpenAI, dialog: GptDialog
) -> None:
    state = DialogState()
    scripted.script(tool("find_user_id_by_email", email=IVAN_ROSSI), {"text": "Thanks, you're verified."})
    await dialog.respond(f"it's {IVAN_ROSSI}", None, state, WEB)
    case = (
        "complaint: parcel marked delivered but not received. order #W7008160: Hiking Boots. marked "
        "delivered on tuesday; customer asked the neighbours. policy: carrier investigation, then a "
        "replacement or a full refund (Lost and late parcels policy)"
    )
    scripted.script(
        tool("search_policies", query="parcel marked delivered but not received"),
        tool("get_order_details", order_id="#W7008160"),
        tool("request_human_agent", reason=case),
        {"text": "I've passed your case to our team; they'll open an investigation with the carrier."},
    )
    [reply] = await dialog.respond(
        "my boots say delivered on tuesday but they're not here, I've asked the neighbours", None, state, WEB
    )
    assert reply.engine == "gpt" and reply.handoff_requested
    assert case in reply.handoff_reason  # what the agent reads first
    # The model read the shop's new lost-parcel policy, not an invented one.
    results = [m["content"] for m in scripted.requests[-1]["messages"] if m["role"] == "tool"]
    assert any("Lost and late parcels policy" in r and "2 days" in r for r in results), results


async def test_a_damaged_item_is_replaced_through_the_exchange_tool_after_a_yes(
    scripted: ScriptedOpenAI, dialog: GptDialog, retail_sqlite: SqliteStore
) -> None:
    state = DialogState(verified_user_id="noah_brown_6181")
    scripted.script(
        tool("search_policies", query="item arrived damaged replacement"),
        tool(
            "exchange_delivered_order_items",
            order_id="#W7678072",
            item_ids=[KETTLE],
            new_item_ids=[KETTLE],
            payment_method_id="paypal_5727330",
        ),
        {"text": "I'm sorry it arrived cracked. I can send you the same kettle again at no cost."},
    )
    [reply] = await dialog.respond("the kettle arrived cracked, can you send another", None, state, WEB)
    assert state.pending_action is not None and reply.suggested_actions == ["Yes", "No"]
    assert "Electric Kettle (1L, glass, black) for Electric Kettle (1L, glass, black)" in reply.text
    order = await retail_sqlite.get_order("#W7678072")
    assert order is not None and order.doc["status"] == "delivered"  # nothing ran before the yes
    [done] = await dialog.respond("yes", None, state, WEB)
    assert "exchange for order #W7678072 is requested" in done.text
    order = await retail_sqlite.get_order("#W7678072")
    assert order is not None and order.doc["exchange_new_items"] == [KETTLE]
