"""Card numbers and bank details never get past the app's doors: removed before the
Direct Line log, the conversation state, the logs or a model see them, and the customer
is told."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.service import STORES
from bot.settings import Settings
from providers.safety.redaction import iban_valid, luhn_valid, redact
from tests.support.directline import answers, bot_replies, start_conversation

CARD = "4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("text", "kinds", "kept"),
    [
        (f"my card is {CARD}", ["card number"], "my card is"),
        ("use 5500-0000-0000-0004 please", ["card number"], "please"),
        ("378282246310005 is my amex", ["card number"], "is my amex"),
        ("cvv: 123 and it expires 04/27", ["security code", "expiry date"], "and it"),
        ("IBAN GB82 WEST 1234 5698 7654 32", ["bank account number"], "IBAN"),
        ("account number 12345678", ["bank account number"], "account number"),
    ],
)
def test_secrets_are_removed_and_named(text: str, kinds: list[str], kept: str) -> None:
    result = redact(text)
    assert sorted(set(result.removed)) == sorted(set(kinds))
    assert kept in result.text and not any(ch.isdigit() for ch in result.text.replace("04/27", ""))


@pytest.mark.parametrize(
    "text",
    [
        "where is order #W2611340?",
        "tracking 262530041486",
        "call me on 555 123 4567",
        "4111 1111 1111 1112 is not a real card",  # fails the Luhn check
        "my zip is 80279 and I ordered 3 items for $146.98",
        "the code on the box is 123",
    ],
)
def test_everything_else_is_left_alone(text: str) -> None:
    assert redact(text).text == text and not redact(text).changed


def test_the_checks() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82 WEST 1234 5698 7654 33")


async def test_a_card_number_in_a_chat_is_stored_nowhere(
    server: TestServer,
    base_url: str,
    http: aiohttp.ClientSession,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    conv = await start_conversation(http, base_url)
    server_id, _ = await conv.send(f"can I pay with my card {CARD}, cvv 737, exp 03/28?")
    activities = await conv.poll_until(answers(server_id))
    while len([a for a in bot_replies(activities) if a.get("replyToId") == server_id]) < 2:
        activities += await conv.poll_until(answers(server_id))  # the notice, then the answer
    echoed = next(a for a in activities if a["id"] == server_id)
    assert "1111" not in echoed["text"] and "[card number removed]" in echoed["text"]
    notice = next(a for a in bot_replies(activities) if a.get("replyToId") == server_id)["text"]
    assert "removed the card number, expiry date and security code" in notice
    assert "don't share card" in notice

    digits = CARD.replace(" ", "")
    stored = await server.app[STORES].state.read_state(f"directline/conversations/{conv.conversation_id}")
    assert stored is not None and digits not in str(stored.doc) and CARD not in str(stored.doc)
    assert "737" not in str(stored.doc)
    await server.app[STORES].state.ping()
    # The whole store file, WAL included: not in any table, log or index.
    for path in Path(settings.sqlite_path).parent.glob(Path(settings.sqlite_path).name + "*"):
        data = path.read_bytes()
        assert digits.encode() not in data and CARD.encode() not in data, path
    assert digits not in caplog.text and CARD not in caplog.text


async def test_the_bot_framework_endpoint_removes_it_too(
    server: TestServer,
    base_url: str,
    http: aiohttp.ClientSession,
    channel_inbox: tuple[str, list[dict[str, Any]]],
) -> None:
    service_url, received = channel_inbox
    activity = {
        "type": "message",
        "id": "m-1",
        "text": f"refund to {CARD} please",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": "user-1", "role": "user"},
        "recipient": {"id": "bot", "role": "bot"},
        "conversation": {"id": "conv-redact", "conversationType": "personal"},
    }
    async with http.post(f"{base_url}/api/messages", json=activity) as resp:
        assert resp.status == 201
    assert "removed the card number" in received[0]["text"]
    stored = await server.app[STORES].state.read_state("msteams/conversations/conv-redact")
    assert stored is not None and "[card number removed]" in str(stored.doc)
    assert CARD.replace(" ", "") not in str(stored.doc) and CARD not in str(stored.doc)
