"""Barge-in: a caller who speaks over the bot stops it at once, and is heard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from bot.service import VOICE
from tests.voice.caller import FRAME_BYTES, ScriptedCaller

# ACS's own budget for a voice bot to stop talking when the caller does.
STOP_WITHIN_S = 0.2


def first_voiced_frame(pcm: bytes) -> int:
    """The index of the first 20 ms frame with speech energy (Piper starts with a little silence)."""
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float32)
    frames = len(samples) // (FRAME_BYTES // 2)
    for index in range(frames):
        frame = samples[index * (FRAME_BYTES // 2) : (index + 1) * (FRAME_BYTES // 2)]
        if np.sqrt(np.mean(frame**2)) > 500:
            return index
    raise AssertionError("the caller's audio has no speech in it")


@pytest.mark.timeout(120)
async def test_speaking_over_the_bot_stops_its_audio_within_200_ms_and_is_answered(
    dial: Callable[..., Awaitable[ScriptedCaller]],
    transcribe: Callable[[bytes], Awaitable[str]],
    voice_server: TestServer,
) -> None:
    call = await dial()
    await call.first_words()  # the greeting (several seconds) starts playing
    await asyncio.sleep(0.5)
    greeting_bytes = len(call.heard.audio)

    speech = await call.speech("Sorry, where is my order?")
    onset = first_voiced_frame(speech)
    sending = asyncio.create_task(call.send_audio(speech + b"\0" * FRAME_BYTES * 60, realtime=True))
    # The caller's voice starts `onset` frames into what is sent, in real time.
    voice_starts = time.monotonic() + onset * 0.02
    assert await call.stopped(timeout_s=3 + onset * 0.02), "the bot kept talking over the caller"
    stopped_after = call.heard.stops[0] - voice_starts
    # Measured with the audio sent in real time, as a phone line does.
    assert stopped_after < STOP_WITHIN_S, f"StopAudio {stopped_after * 1000:.0f} ms after the caller spoke"

    # The rest of the greeting is dropped, not played after the caller finishes.
    stopped_at_bytes = call.heard.cut[0]
    await sending
    answer = await call.listen()
    assert voice_server.app[VOICE].calls, "the call ended"
    greeting_total = 8.0 * 32_000  # the greeting lasts well over eight seconds
    assert stopped_at_bytes < greeting_total, "the greeting played out in full"
    # The caller was heard: the bot answers the question it was interrupted with.
    heard = [timing.text for timing in voice_server.app[VOICE].timings]
    assert any("order" in text for text in heard), heard
    said = await transcribe(bytes(answer.audio))
    assert "name" in said or "order" in said, (said, heard)
    assert greeting_bytes > 0
    await call.hang_up()
