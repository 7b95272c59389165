"""Phone calls: how long a caller waits, from the end of their speech to the bot's first
audio, with the offline engine and the offline speech stack (silero VAD, pocketsphinx,
Piper).

The app (`create_app`, the embedded SQLite store on a copy of the shipped dataset) serves
`/api/voice` on loopback in this process, so the bench can read the channel's per-turn
stage times (`VoiceChannel.timings`). A caller of its own speaks ACS's bidirectional
audio streaming format over the WebSocket as a phone line does: `AudioMetadata`, then a
20 ms `AudioData` frame every 20 ms for the whole call, silence while the caller is quiet.
The caller's voice is Piper without its random variation (the same words sound the same
on every run), trimmed to its voiced frames and synthesised before the calls start.

Each call greets, then the caller says the next line of a script (questions the offline
engine answers at once, a verification by name and zip code, an order by its digits, a
cancellation it declines with "no"), listens to the whole answer as it plays, waits a
moment, and says the next. Measured per turn, on the caller's side: the moment its last
voiced frame was sent -> the first `AudioData` frame of the answer received. The
server's stage times for the same turn (`TurnTiming`, `time.monotonic()`, the same clock
in the same process) split that into:

- VAD and recognizer: the caller's last voiced frame -> where the listener put the end of
  speech, which it reckons back from its decision by the silence it waited. What is left
  is the VAD's own tail (its speech probability falls over a window or three), audio
  waiting for the listener's thread, and the recognizer's last pass (`end_utt`);
- end silence: the silence the listener waits before it takes the turn as over
  (VOICE_END_SILENCE_MS, in whole 32 ms VAD windows);
- bot turn: the transcript -> the first reply (the adapter, the offline engine, the store);
- TTS: the first reply -> its first audio frame sent (Piper on the reply's first clause);
- delivery: that frame sent -> received by the caller.

Two apps run side by side, one per end-silence setting (the default 500 ms, and 300 ms),
and the calls alternate between them so both see the same machine.

Run: `.venv/bin/python -m bench.voice [--turns 30] [--calls 3] [--end-silence-ms 500,300]`
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

from bench.turns import free_port
from bot.channels.voice import TurnTiming, VoiceChannel
from bot.service import VOICE, create_app
from bot.settings import Settings
from providers.speech.local import PiperTextToSpeech
from shop.dataset import SHIPPED_DATASET_DIR, import_dataset
from shop.store.sqlite import SqliteStore

FRAME_S = 0.02
FRAME_BYTES = 640  # 20 ms of 16 kHz 16-bit mono, ACS's frame
SILENCE = b"\0" * FRAME_BYTES
# A frame is voiced when its RMS is above this (16-bit scale; about -50 dBFS): Piper's
# pauses and tails are far below it, its quietest consonants above.
VOICED_RMS = 100.0
# After the bot's answer has played out, the caller takes this long to answer back.
REACTION_S = 0.4
TURN_TIMEOUT_S = 30.0

# Each call: a customer (Amelia Wilson, zip 75215, whose orders are #W9077205 delivered,
# #W4420044 cancelled, #W3062096 pending) with short questions the offline engine
# answers at once, and the answers to its own questions ("yes", "no", name and zip, an
# order by its digits). The recognizer hears some of them wrongly; the bot answers what
# it heard, which is what a caller would get too.
SCRIPT = (
    "Hi, I'd like to check on my order.",
    "My name is Amelia Wilson, and my zip code is 7 5 2 1 5.",
    "It's 9 0 7 7 2 0 5.",
    "What is your return policy?",
    "Do you ship to Canada?",
    "Please cancel my pending order.",
    "I don't need it anymore.",
    "No.",
    "How long does shipping take?",
    "Thank you, that's all.",
)
WARM_UP = ("Hello.", "What is your return policy?")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def voiced(pcm: bytes) -> bytes:
    """The audio from its first voiced frame to its last, in whole frames."""
    frames = [pcm[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0") for i in range(0, len(pcm), FRAME_BYTES)]
    loud = [
        i
        for i, frame in enumerate(frames)
        if np.sqrt(np.mean(np.frombuffer(frame, dtype="<i2").astype(np.float64) ** 2)) > VOICED_RMS
    ]
    return b"".join(frames[loud[0] : loud[-1] + 1]) if loud else b""


def audio_frame(pcm: bytes) -> str:
    return json.dumps(
        {
            "kind": "AudioData",
            "audioData": {
                "timestamp": "2026-12-02T10:00:00.000Z",
                "participantRawID": "4:+15550100123",
                "data": base64.b64encode(pcm).decode(),
                "silent": not any(pcm),
            },
        }
    )


METADATA = json.dumps(
    {
        "kind": "AudioMetadata",
        "audioMetadata": {
            "subscriptionId": "89e8cb59-b991-48b0-b154-1db84f16a077",
            "encoding": "PCM",
            "sampleRate": 16_000,
            "channels": 1,
            "length": FRAME_BYTES,
        },
    }
)
SILENT_FRAME = audio_frame(SILENCE)


class PhoneLine:
    """The caller's end of a call in ACS's shape: a frame every 20 ms on a fixed schedule
    (the caller's speech when there is some, silence otherwise), and the bot's audio
    played back at its real rate."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._speech: deque[bytes] = deque()
        self._spoken: asyncio.Future[float] | None = None
        self.arrivals: list[float] = []  # when each of the bot's audio frames arrived
        self.audible_until = 0.0
        self._tasks = [asyncio.create_task(self._stream()), asyncio.create_task(self._read())]

    async def _stream(self) -> None:
        await self._ws.send_str(METADATA)
        next_at = time.monotonic()
        while not self._ws.closed:
            if self._speech:
                await self._ws.send_str(audio_frame(self._speech.popleft()))
                if not self._speech and self._spoken is not None:
                    self._spoken.set_result(time.monotonic())
            else:
                await self._ws.send_str(SILENT_FRAME)
            next_at += FRAME_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.monotonic()
            body: dict[str, Any] = json.loads(message.data)
            if body.get("Kind") == "AudioData":
                self.arrivals.append(now)
                seconds = len(base64.b64decode(body["AudioData"]["Data"])) / (2 * 16_000)
                self.audible_until = max(now, self.audible_until) + seconds
            elif body.get("Kind") == "StopAudio":
                self.audible_until = now

    async def say(self, pcm: bytes) -> float:
        """Speaks `pcm` (voiced frames only); answers when its last frame was sent."""
        self._spoken = asyncio.get_running_loop().create_future()
        self._speech.extend(pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES))
        return await self._spoken

    async def listen(self, after: float = 0.0) -> None:
        """Until the bot has answered (audio arrived after `after`), its audio has played
        out and a moment has passed."""
        deadline = time.monotonic() + TURN_TIMEOUT_S
        while time.monotonic() < deadline:
            answered = self.arrivals and self.arrivals[-1] > after
            if answered and time.monotonic() > self.audible_until + REACTION_S:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the bot did not answer within {TURN_TIMEOUT_S:.0f} s")

    def first_arrival(self, since: float) -> float:
        return next(at for at in self.arrivals if at >= since)

    async def hang_up(self) -> None:
        await self._ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class Turn:
    heard: str  # what the recognizer made of the caller's words
    total_ms: float  # the caller's last voiced frame sent -> the answer's first frame received
    listener_ms: float
    end_silence_ms: float
    bot_ms: float
    tts_ms: float
    delivery_ms: float
    utterances: int  # how many turns the listener made of the caller's words (1 unless cut)


STAGES = ("listener_ms", "end_silence_ms", "bot_ms", "tts_ms", "delivery_ms")
STAGE_NAMES = {
    "listener_ms": "VAD and recognizer (last voiced frame -> speech end heard)",
    "end_silence_ms": "end silence (speech end heard -> transcript)",
    "bot_ms": "bot turn (transcript -> first reply)",
    "tts_ms": "TTS (first reply -> first audio frame sent)",
    "delivery_ms": "delivery (frame sent -> received)",
}


def as_turn(spoken: float, line: PhoneLine, timings: list[TurnTiming]) -> Turn:
    """The turn's figures. When the listener cut the caller's words into several
    utterances (a pause longer than the end silence), the answer the caller waited for
    is the one to the last of them."""
    answers = [t for t in timings if t.reply_at is not None and t.first_audio_at is not None]
    timing = max(answers, key=lambda t: t.recognized_at)
    assert timing.reply_at is not None and timing.first_audio_at is not None
    answered = line.first_arrival(timing.first_audio_at)
    return Turn(
        heard=" | ".join(t.text for t in timings),
        total_ms=(answered - spoken) * 1000,
        listener_ms=(timing.speech_ended_at - spoken) * 1000,
        end_silence_ms=(timing.recognized_at - timing.speech_ended_at) * 1000,
        bot_ms=(timing.reply_at - timing.recognized_at) * 1000,
        tts_ms=(timing.first_audio_at - timing.reply_at) * 1000,
        delivery_ms=(answered - timing.first_audio_at) * 1000,
        utterances=len(timings),
    )


async def call(
    session: aiohttp.ClientSession, url: str, voice: VoiceChannel, lines: list[bytes]
) -> list[Turn]:
    """One call: the greeting, then each line said and answered."""
    ws = await session.ws_connect(f"{url}/api/voice?caller=%2B15550100123")
    line = PhoneLine(ws)
    turns = []
    try:
        await line.listen()  # the greeting
        for pcm in lines:
            before = len(voice.timings)
            spoken = await line.say(pcm)
            await line.listen(after=spoken)
            turns.append(as_turn(spoken, line, list(voice.timings)[before:]))
    finally:
        await line.hang_up()
    return turns


@asynccontextmanager
async def serve(end_silence_ms: int, template: Path, folder: Path) -> AsyncIterator[tuple[str, VoiceChannel]]:
    path = folder / f"voice-{end_silence_ms}.sqlite3"
    shutil.copyfile(template, path)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        SQLITE_PATH=path,
        SEED_ON_START=False,
        LOG_LEVEL="WARNING",
        VOICE_END_SILENCE_MS=end_silence_ms,
    )
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", runner.app[VOICE]
    finally:
        await runner.cleanup()


async def dataset_template(folder: Path) -> Path:
    """The shipped dataset imported once; each app gets a copy."""
    path = folder / "template.sqlite3"
    store = await SqliteStore.open(path)
    try:
        await import_dataset(store, SHIPPED_DATASET_DIR, progress=False)
    finally:
        await store.aclose()
    return path


async def caller_lines(texts: tuple[str, ...]) -> dict[str, bytes]:
    voice = PiperTextToSpeech(variation=False)
    await voice.start()
    try:
        return {text: voiced(b"".join([pcm async for pcm in voice.speak(text)])) for text in texts}
    finally:
        await voice.aclose()


async def measure(turns: int, calls: int, settings_ms: list[int]) -> dict[int, list[Turn]]:
    spoken = await caller_lines(tuple(dict.fromkeys(SCRIPT + WARM_UP)))
    per_call = -(-turns // calls)
    scripts = [[spoken[SCRIPT[n % len(SCRIPT)]] for n in range(per_call)] for _ in range(calls)]
    results: dict[int, list[Turn]] = {ms: [] for ms in settings_ms}
    with tempfile.TemporaryDirectory(prefix="aftercare-voice-") as name:
        template = await dataset_template(Path(name))
        async with aiohttp.ClientSession() as session, AsyncExitStack() as apps:
            served = {
                ms: await apps.enter_async_context(serve(ms, template, Path(name))) for ms in settings_ms
            }
            for url, voice in served.values():  # loads the models and warms every path
                await call(session, url, voice, [spoken[text] for text in WARM_UP])
            for lines in scripts:  # the settings take turns, call by call
                for ms, (url, voice) in served.items():
                    results[ms] += await call(session, url, voice, lines)
    return results


def row(name: str, values: list[float], total: float) -> str:
    p50 = percentile(values, 0.5)
    share = f"{p50 / total * 100:>6.0f}%" if total else ""
    return f"  {name:<58}{p50:>8.0f}{percentile(values, 0.95):>8.0f}{share:>8}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=30, help="measured turns per setting")
    parser.add_argument(
        "--calls", type=int, default=3, help="calls per setting (the turns split between them)"
    )
    parser.add_argument("--end-silence-ms", default="500,300", help="VOICE_END_SILENCE_MS of each app")
    parser.add_argument("--verbose", action="store_true", help="print every turn")
    args = parser.parse_args()
    settings_ms = [int(ms) for ms in args.end_silence_ms.split(",")]
    load = os.getloadavg()
    results = asyncio.run(measure(args.turns, args.calls, settings_ms))
    print(
        f"{os.cpu_count()} cores, load average before {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}; offline engine, local speech; the app and the caller in one process"
    )
    for ms, turns in results.items():
        totals = [t.total_ms for t in turns]
        cut = sum(t.utterances != 1 for t in turns)
        print(
            f"\nVOICE_END_SILENCE_MS={ms}: {len(turns)} turns in {args.calls} calls"
            + (f" ({cut} turns heard as more than one utterance)" if cut else "")
        )
        print(f"  {'caller end of speech -> first bot audio, ms':<58}{'p50':>8}{'p95':>8}{'of p50':>8}")
        print(row("total, measured by the caller", totals, 0.0))
        p50 = percentile(totals, 0.5)
        for stage in STAGES:
            print(row(STAGE_NAMES[stage], [getattr(t, stage) for t in turns], p50))
        if args.verbose:
            for t in turns:
                print(
                    f"    {t.total_ms:>6.0f} ms = {t.listener_ms:>5.0f} + {t.end_silence_ms:>4.0f} + "
                    f"{t.bot_ms:>4.0f} + {t.tts_ms:>4.0f} + {t.delivery_ms:>3.0f}  heard {t.heard!r}"
                )


if __name__ == "__main__":
    main()
