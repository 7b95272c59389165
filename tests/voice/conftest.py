"""The phone channel's fixtures: the offline speech loaded once for the whole run, an app
that serves calls with it, a scripted caller on its WebSocket, and a transcriber for
what the bot says."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.service import create_app
from bot.settings import Settings
from dialogs import OfflineResources
from providers.config import SpeechProvider
from providers.factory import build_speech
from providers.speech import SpeechToText, TextToSpeech, Vocabulary
from providers.speech.base import SAMPLE_RATE
from providers.speech.local import PiperTextToSpeech
from providers.speech.stack import SpeechStack
from tests.handoff.conftest import add_agent, agent_client  # noqa: F401 (the agent console's fixtures)
from tests.voice.caller import ScriptedCaller


def shop_vocabulary(dataset_dir: Path) -> Vocabulary:
    users = json.loads((dataset_dir / "users.json").read_text())
    return Vocabulary(
        first_names=tuple(sorted({u["name"]["first_name"] for u in users.values()})),
        last_names=tuple(sorted({u["name"]["last_name"] for u in users.values()})),
    )


@pytest.fixture(scope="session")
def speech_stack(dataset_dir: Path) -> Iterator[SpeechStack]:
    """pocketsphinx, silero and Piper, loaded once (about a second) for every call test."""
    # As many lines as the app takes by default: the pool refuses the call past them.
    settings = SimpleNamespace(
        speech_provider=SpeechProvider.LOCAL,
        voice_max_calls=Settings.model_fields["voice_max_calls"].default,
        voice_end_silence_ms=500,
    )
    vocabulary = shop_vocabulary(dataset_dir)

    async def build() -> tuple[SpeechToText, TextToSpeech]:
        ears, _ = build_speech(settings, vocabulary)  # type: ignore[arg-type]
        # The bot's voice without Piper's random variation: what a test hears it say, and
        # so what the recognizer transcribes back, is the same on every run.
        return ears, PiperTextToSpeech(variation=False)

    stack = SpeechStack(build)
    asyncio.run(stack.ready())
    yield stack
    asyncio.run(stack.aclose())


@pytest.fixture(scope="session")
def caller_voice() -> Iterator[TextToSpeech]:
    """The scripted caller's voice: Piper without its random variation, so a test's
    caller says the same words the same way on every run."""
    voice = PiperTextToSpeech(variation=False)
    asyncio.run(voice.start())
    yield voice
    asyncio.run(voice.aclose())


@pytest.fixture
async def voice_server(
    settings: Settings, offline_resources: OfflineResources, speech_stack: SpeechStack
) -> AsyncIterator[TestServer]:
    server = TestServer(
        create_app(settings, offline_resources=offline_resources, speech=speech_stack), host="127.0.0.1"
    )
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def dial(
    voice_server: TestServer, caller_voice: TextToSpeech
) -> AsyncIterator[Callable[..., Awaitable[ScriptedCaller]]]:
    """Places a call from `caller` (a number) to the app's /api/voice."""
    async with aiohttp.ClientSession() as session:
        callers: list[ScriptedCaller] = []

        async def dial(caller: str = "+15550100123", *, sample_rate: int = 16_000) -> ScriptedCaller:
            ws = await session.ws_connect(
                voice_server.make_url(f"/api/voice?caller={caller.replace('+', '%2B')}")
            )
            call = ScriptedCaller(ws, caller_voice)
            await call.start(sample_rate)
            callers.append(call)
            return call

        yield dial
        for call in callers:
            if not call.ws.closed:
                await call.hang_up()


@pytest.fixture(scope="session")
def transcribe() -> Callable[[bytes], Awaitable[str]]:
    """What the bot said, as the offline recognizer hears it (dictation)."""
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
    lock = threading.Lock()

    def run(pcm: bytes) -> str:
        with lock:
            decoder.start_utt()
            decoder.process_raw(pcm, False, True)
            decoder.end_utt()
            hypothesis = decoder.hyp()
            return hypothesis.hypstr if hypothesis else ""

    async def transcribe(pcm: bytes) -> str:
        return await asyncio.to_thread(run, pcm)

    return transcribe
