"""Keypad digits (DTMF): a caller types the zip code and the order number the bot asks for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from bot.service import VOICE
from tests.voice.caller import ScriptedCaller


@pytest.mark.timeout(180)
async def test_a_caller_types_the_zip_code_and_the_order_number(
    dial: Callable[..., Awaitable[ScriptedCaller]],
    transcribe: Callable[[bytes], Awaitable[str]],
    voice_server: TestServer,
) -> None:
    call = await dial()
    voice = voice_server.app[VOICE]
    await call.first_words()  # the greeting
    await call.say("I want to check my order.")
    assert "name" in await transcribe(bytes((await call.listen()).audio))

    await call.say("Amelia Wilson.")
    asked_zip = await transcribe(bytes((await call.listen()).audio))
    assert "zip" in asked_zip or "code" in asked_zip, asked_zip

    # Five digits where a zip code is asked go in without "#".
    await call.press("75215")
    await call.first_words()
    heard = [timing.text for timing in voice.timings]
    assert heard[-1] == "75215", heard
    # Verified, the bot lists her orders; she types one over it, ending with "#".
    await call.press("9077205#")
    answer = await transcribe(bytes((await call.listen()).audio))
    heard = [timing.text for timing in voice.timings]
    assert heard[-1] == "#W9077205", heard
    assert "deliver" in answer, (answer, heard)
    await call.hang_up()
