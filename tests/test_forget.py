"""`aftercare data forget --customer ID` on a running app: a customer's conversations over
Direct Line (state, log, handoff) are erased, another customer's stay, orders stay, and
the customer can start a new conversation afterwards."""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.handoff.store import HandoffStore
from bot.service import STORES
from bot.settings import Settings
from bot.staff_cli import EXIT_UNKNOWN_CUSTOMER, add_commands
from shop.store.base import StateStore
from tests.handoff.conftest import NOAH_EMAIL, NOAH_ORDER, say, texts
from tests.support.directline import start_conversation

NOAH = "noah_brown_6181"
IVAN, IVAN_EMAIL = "ivan_santos_6635", "ivan.santos3158@example.com"


def forget(customer: str, settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="aftercare")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", "forget", "--customer", customer])
    code: int = args.handler(args, settings)
    return code


async def keys_of(state: StateStore, conversation_id: str) -> list[str]:
    """Every stored document of one Direct Line conversation."""
    return sorted(
        [key async for key in state.iter_state_keys("") if conversation_id in key and "index" not in key]
    )


async def test_forget_erases_one_customers_conversations_and_keeps_orders_and_others(
    server: TestServer,
    base_url: str,
    http: aiohttp.ClientSession,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = server.app[STORES].state
    orders = server.app[STORES].orders
    handoffs = HandoffStore(state)
    noah_order_before = await orders.get_order(NOAH_ORDER)

    noah_chats = [await start_conversation(http, base_url) for _ in range(2)]
    for chat in noah_chats:
        assert "Noah" in texts(await say(chat, NOAH_EMAIL))
    await say(noah_chats[1], "I want to talk to a real person please")
    ivan = await start_conversation(http, base_url)
    assert "Ivan" in texts(await say(ivan, IVAN_EMAIL))
    await say(ivan, "I want to talk to a real person please")

    noah_ids = [chat.conversation_id for chat in noah_chats]
    for conversation_id in noah_ids:
        assert f"directline/conversations/{conversation_id}" in await keys_of(state, conversation_id)
    ivan_before = await keys_of(state, ivan.conversation_id)
    assert f"handoff/conversation/{ivan.conversation_id}" in ivan_before
    index, _ = await handoffs.index()
    assert {noah_ids[1], ivan.conversation_id} <= set(index.entries)

    # The staff command runs beside the app, on the same store, as another process would.
    assert await asyncio.to_thread(forget, NOAH, settings) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["forgotten"] == NOAH
    assert report["erased"]["conversations"] == 2 and report["erased"]["conversation_states"] == 2
    assert report["erased"]["handoff_records"] == 1 and report["erased"]["directline_activities"] >= 8
    assert "1 orders" in report["kept"] and "tax" in report["kept"]

    for conversation_id in noah_ids:
        assert await keys_of(state, conversation_id) == []
    index, _ = await handoffs.index()
    assert noah_ids[1] not in index.entries and ivan.conversation_id in index.entries
    assert await keys_of(state, ivan.conversation_id) == ivan_before
    customer = await orders.get_customer(NOAH)
    assert customer is not None and customer.doc["orders"] == [NOAH_ORDER]
    order = await orders.get_order(NOAH_ORDER)
    assert order is not None and noah_order_before is not None and order.doc == noah_order_before.doc

    # Noah comes back: a new conversation works as before.
    again = await start_conversation(http, base_url)
    assert "Noah" in texts(await say(again, NOAH_EMAIL))
    assert NOAH_ORDER in texts(await say(again, f"where is my order {NOAH_ORDER}?"))


async def test_forget_an_unknown_customer_says_so_and_exits_2(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(forget, "nobody_0000", settings) == EXIT_UNKNOWN_CUSTOMER == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no customer with id 'nobody_0000'; nothing was erased" in captured.err


async def test_forget_a_customer_without_conversations_erases_nothing(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(forget, IVAN, settings) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["erased"] == {
        "conversations": 0,
        "conversation_states": 0,
        "directline_activities": 0,
        "handoff_records": 0,
    }
