"""A whole phone call with no network: a scripted caller, speaking with the offline TTS,
verifies by name and zip code, asks about an order and cancels another by voice; what
the bot says is transcribed back with the offline recognizer, and the store is checked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from bot.service import STORES, VOICE
from tests.voice.caller import ScriptedCaller

_DIGITS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}
_DIGITS |= {"six": "6", "seven": "7", "eight": "8", "nine": "9"}


def digits(transcript: str) -> str:
    """The digits said, run together ("w nine zero ... two zero five" -> "9...205"): what
    the bot read out, whatever the words around them were heard as."""
    return "".join(_DIGITS.get(word, "") for word in transcript.split())


# Amelia Wilson (zip 75215): #W9077205 delivered, #W4420044 cancelled, #W3062096 pending.
PENDING_ORDER = "#W3062096"


# The bot's answers play out in real time, as on a phone: the call takes minutes, not seconds.
@pytest.mark.timeout(300)
async def test_a_caller_verifies_asks_and_cancels_an_order_by_voice(
    dial: Callable[..., Awaitable[ScriptedCaller]],
    transcribe: Callable[[bytes], Awaitable[str]],
    voice_server: TestServer,
) -> None:
    call = await dial("+15550100123")
    voice = voice_server.app[VOICE]

    async def exchange(caller_says: str) -> tuple[str, list[str]]:
        """What the bot answered (transcribed), and what it heard the caller say so far."""
        await call.say(caller_says)
        answer = await transcribe(bytes((await call.listen()).audio))
        return answer, [timing.text for timing in voice.timings]

    greeting = await transcribe(bytes((await call.listen()).audio))
    assert "help" in greeting or "orders" in greeting, greeting

    answer, heard = await exchange("Hi, I'd like to check on my order.")
    assert "name" in answer, (answer, heard)

    answer, heard = await exchange("My name is Amelia Wilson, and my zip code is 7 5 2 1 5.")
    # Verified, she is asked which order: a list read out, ids digit by digit.
    assert "7205" in digits(answer) and "2096" in digits(answer), (answer, heard)

    answer, heard = await exchange("It's 9 0 7 7 2 0 5.")
    assert "deliver" in answer, (answer, heard)

    store = voice_server.app[STORES].orders
    answer, heard = await exchange("Please cancel my pending order.")
    # A cancellation records why: the bot asks, naming the order.
    assert "2096" in digits(answer), (answer, heard)

    answer, heard = await exchange("I don't need it anymore.")
    # The action is repeated back before anything happens (the order, the reason), and
    # waits for a yes. Not the word "cancel": after "Here's what I'll do", the recognizer
    # hears Piper's "cancel order W" as "get so ordered"; the digits and phrases hold.
    assert "2096" in digits(answer) and "needed" in answer and "go ahead" in answer, (answer, heard)
    proposed = await store.get_order(PENDING_ORDER)
    assert proposed is not None and proposed.doc["status"] == "pending"

    answer, heard = await exchange("Yes, please.")
    assert "cancel" in answer, (answer, heard)
    done = await store.get_order(PENDING_ORDER)
    assert done is not None and done.doc["status"] == "cancelled"
    await call.hang_up()
