"""The tools and the confirmation gate: the rules both engines depend on, exercised
directly over the real retail service and the full dataset in SQLite."""

from __future__ import annotations

import json

import pytest

from bot.staff_cli import STAFF_ACTIONS
from dialogs.tools.runner import MAX_VERIFICATION_FAILURES, ToolRunner
from dialogs.turn import DialogState
from shop.retail import RetailService
from shop.store.sqlite import SqliteStore

NOAH, NOAH_EMAIL, NOAH_ORDER = "noah_brown_6181", "noah.brown7922@example.com", "#W7678072"
EVELYN, EVELYN_PENDING = "evelyn_ito_7643", "#W6207110"
IVAN_ORDER = "#W6893533"


@pytest.fixture
def tools(retail_sqlite: SqliteStore) -> ToolRunner:
    return ToolRunner(RetailService(retail_sqlite))


def verified(user_id: str) -> DialogState:
    return DialogState(verified_user_id=user_id, turn=1)


def test_schemas_come_from_the_signatures_and_never_name_the_customer(tools: ToolRunner) -> None:
    schemas = {s["function"]["name"]: s["function"] for s in tools.schemas()}
    assert set(STAFF_ACTIONS) | {"search_policies", "search_products", "request_human_agent"} == set(schemas)
    assert len(STAFF_ACTIONS) == 14  # every rule of the shop is a tool, declared once
    cancel = schemas["cancel_pending_order"]
    assert cancel["parameters"]["required"] == ["order_id", "reason"]
    assert cancel["parameters"]["properties"]["reason"]["enum"] == ["no longer needed", "ordered by mistake"]
    assert "'#W2611340'" in cancel["parameters"]["properties"]["order_id"]["description"]
    assert cancel["parameters"]["additionalProperties"] is False
    assert schemas["modify_pending_order_items"]["parameters"]["properties"]["item_ids"]["type"] == "array"
    # An address is one object, written in place (no $ref a small model server may not follow).
    address = schemas["modify_pending_order_address"]["parameters"]["properties"]["address"]
    assert address["type"] == "object" and address["additionalProperties"] is False
    assert set(address["required"]) == {"address1", "city", "state", "country", "zip"}
    assert "'986 Sunset Drive'" in address["properties"]["address1"]["description"]
    assert "$ref" not in json.dumps(schemas) and "$defs" not in json.dumps(schemas)
    for function in schemas.values():
        assert "user_id" not in function["parameters"].get("properties", {})
        assert function["description"]


async def test_customer_tools_refuse_until_verified(tools: ToolRunner) -> None:
    state = DialogState()
    result = await tools.call("get_order_details", {"order_id": NOAH_ORDER}, state)
    assert not result.ok and "not verified" in result.error
    assert result.data is None
    assert state.tool_calls[-1].tool == "get_order_details" and not state.tool_calls[-1].ok


async def test_verification_sets_the_customer_and_failures_are_counted(tools: ToolRunner) -> None:
    state = DialogState()
    failed = await tools.call("find_user_id_by_email", {"email": "nobody@example.com"}, state)
    assert not failed.ok and state.verification_failures == 1 and state.verified_user_id is None
    found = await tools.call("find_user_id_by_email", {"email": NOAH_EMAIL.upper()}, state)
    assert found.ok and found.data == NOAH
    assert state.verified_user_id == NOAH and state.customer_first_name == "Noah"
    assert state.verification_failures == 1  # the earlier failure still counts towards the cap


async def test_verification_stops_answering_after_repeated_failures(tools: ToolRunner) -> None:
    state = DialogState()
    for _ in range(MAX_VERIFICATION_FAILURES):
        await tools.call(
            "find_user_id_by_name_zip", {"first_name": "A", "last_name": "B", "zip": "00000"}, state
        )
    result = await tools.call("find_user_id_by_email", {"email": NOAH_EMAIL}, state)
    assert not result.ok and "too many" in result.error and state.verified_user_id is None


async def test_another_customers_order_reads_as_not_found(tools: ToolRunner) -> None:
    state = verified(NOAH)
    result = await tools.call("get_order_details", {"order_id": IVAN_ORDER}, state)
    assert not result.ok and result.error == f"order {IVAN_ORDER} not found"
    proposal = await tools.call(
        "cancel_pending_order", {"order_id": "#W8770097", "reason": "no longer needed"}, state
    )
    assert not proposal.ok and state.pending_action is None


async def test_bad_arguments_come_back_as_text(tools: ToolRunner) -> None:
    state = verified(EVELYN)
    unknown = await tools.call("drop_tables", {}, state)
    assert not unknown.ok and "no tool named" in unknown.error
    bad_json = await tools.call("get_order_details", "{not json", state)
    assert not bad_json.ok and "not valid JSON" in bad_json.error
    bad_reason = await tools.call(
        "cancel_pending_order", {"order_id": EVELYN_PENDING, "reason": "bored"}, state
    )
    assert not bad_reason.ok and "reason" in bad_reason.error
    extra = await tools.call("get_order_details", {"order_id": EVELYN_PENDING, "user_id": NOAH}, state)
    assert not extra.ok and "user_id" in extra.error
    assert bad_reason.model_text().startswith("Error: ")


async def test_a_consequential_tool_only_proposes(tools: ToolRunner, retail_sqlite: SqliteStore) -> None:
    state = verified(EVELYN)
    before = (await retail_sqlite.get_order(EVELYN_PENDING)).doc  # type: ignore[union-attr]
    result = await tools.call(
        "cancel_pending_order", json.dumps({"order_id": "W6207110", "reason": "ordered by mistake"}), state
    )
    assert result.ok and result.pending is not None and state.pending_action == result.pending
    assert "$536.67" in result.pending.summary and "Visa ending 5896" in result.pending.summary
    assert result.model_text().startswith("NOT DONE YET")
    assert (await retail_sqlite.get_order(EVELYN_PENDING)).doc == before  # type: ignore[union-attr]


async def propose_cancel(tools: ToolRunner, state: DialogState) -> None:
    await tools.call(
        "cancel_pending_order", {"order_id": EVELYN_PENDING, "reason": "no longer needed"}, state
    )
    assert state.pending_action is not None


async def status(store: SqliteStore, order_id: str) -> str:
    order = await store.get_order(order_id)
    assert order is not None
    return str(order.doc["status"])


async def test_the_next_messages_yes_runs_it(tools: ToolRunner, retail_sqlite: SqliteStore) -> None:
    state = verified(EVELYN)
    await propose_cancel(tools, state)
    state.turn += 1
    outcome = await tools.gate.on_message(state, "Yes, please go ahead!", None)
    assert outcome.kind == "confirmed" and outcome.result.ok
    assert await status(retail_sqlite, EVELYN_PENDING) == "cancelled"
    assert state.pending_action is None and state.actions[-1].tool == "cancel_pending_order"


@pytest.mark.parametrize("reply", ["ok", "yes but use paypal", "sure thing", "what will it cost?", ""])
async def test_anything_but_an_explicit_yes_drops_it(
    tools: ToolRunner, retail_sqlite: SqliteStore, reply: str
) -> None:
    state = verified(EVELYN)
    await propose_cancel(tools, state)
    state.turn += 1
    outcome = await tools.gate.on_message(state, reply, None)
    assert outcome.kind == "superseded" and state.pending_action is None
    state.turn += 1
    assert (await tools.gate.on_message(state, "yes", None)).kind == "none"
    assert await status(retail_sqlite, EVELYN_PENDING) == "pending"


async def test_a_no_declines_it(tools: ToolRunner, retail_sqlite: SqliteStore) -> None:
    state = verified(EVELYN)
    await propose_cancel(tools, state)
    state.turn += 1
    assert (await tools.gate.on_message(state, "No thanks", None)).kind == "declined"
    assert await status(retail_sqlite, EVELYN_PENDING) == "pending" and not state.actions


async def test_a_yes_a_turn_too_late_does_not_run_it(tools: ToolRunner, retail_sqlite: SqliteStore) -> None:
    state = verified(EVELYN)
    await propose_cancel(tools, state)
    state.turn += 2  # a turn went by (another engine, a lost message): the proposal is stale
    assert (await tools.gate.on_message(state, "yes", None)).kind == "superseded"
    assert await status(retail_sqlite, EVELYN_PENDING) == "pending"


async def test_a_button_confirms_only_its_own_proposal(tools: ToolRunner, retail_sqlite: SqliteStore) -> None:
    state = verified(EVELYN)
    await propose_cancel(tools, state)
    state.turn += 1
    stale = await tools.gate.on_message(state, "", {"action": "confirm", "pending_id": "an-older-card"})
    assert stale.kind == "superseded" and await status(retail_sqlite, EVELYN_PENDING) == "pending"
    state.turn += 1
    await propose_cancel(tools, state)
    assert state.pending_action is not None
    pending_id = state.pending_action.id
    state.turn += 1
    current = await tools.gate.on_message(state, "", {"action": "confirm", "pending_id": pending_id})
    assert current.kind == "confirmed" and await status(retail_sqlite, EVELYN_PENDING) == "cancelled"


async def test_verifying_as_someone_else_drops_the_proposal(tools: ToolRunner) -> None:
    state = verified(EVELYN)
    await propose_cancel(tools, state)
    await tools.call("find_user_id_by_email", {"email": NOAH_EMAIL}, state)
    assert state.verified_user_id == NOAH and state.pending_action is None


async def test_a_refusal_after_the_yes_changes_nothing(tools: ToolRunner, retail_sqlite: SqliteStore) -> None:
    state = verified(EVELYN)
    await propose_cancel(tools, state)
    # The order moves on between the proposal and the yes (another agent cancelled it).
    await RetailService(retail_sqlite).cancel_pending_order(EVELYN_PENDING, "ordered by mistake")
    state.turn += 1
    outcome = await tools.gate.on_message(state, "yes", None)
    assert outcome.kind == "confirmed" and not outcome.result.ok
    assert "cancelled" in outcome.result.error and not state.actions[-1].ok


async def test_dialog_state_survives_json(tools: ToolRunner) -> None:
    state = verified(EVELYN)
    await propose_cancel(tools, state)
    restored = DialogState.model_validate_json(state.model_dump_json())
    assert restored == state and restored.pending_action is not None
