"""A scripted caller that talks to /api/voice exactly as Azure Communication Services
streams a call: AudioMetadata first, then base64 PCM AudioData frames of 20 ms, DtmfData
for keys; it hears the bot's AudioData and StopAudio back, and transcribes what the bot
said with the offline recognizer. Its voice is the offline TTS."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from providers.speech import TextToSpeech

FRAME_BYTES = 640  # 20 ms of 16 kHz 16-bit mono, ACS's own frame
SILENCE = b"\0" * FRAME_BYTES


def metadata(sample_rate: int = 16_000) -> str:
    return json.dumps(
        {
            "kind": "AudioMetadata",
            "audioMetadata": {
                "subscriptionId": "89e8cb59-b991-48b0-b154-1db84f16a077",
                "encoding": "PCM",
                "sampleRate": sample_rate,
                "channels": 1,
                "length": FRAME_BYTES,
            },
        }
    )


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


def keys_frame(keys: str) -> str:
    return json.dumps({"kind": "DtmfData", "dtmfData": {"data": keys}})


@dataclass
class Heard:
    """What came back from the bot since the caller last listened."""

    audio: bytearray = field(default_factory=bytearray)
    stops: list[float] = field(default_factory=list)  # when each StopAudio arrived
    # Bytes of the bot's audio each StopAudio cut short (dropped from `audio`: a cut-off
    # answer is not part of what the bot says next).
    cut: list[int] = field(default_factory=list)
    first_audio_at: float | None = None


class ScriptedCaller:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, voice: TextToSpeech) -> None:
        self.ws = ws
        self._voice = voice
        self.heard = Heard()
        self.audible_until = 0.0
        self.last_audio_at = 0.0
        self.closed = asyncio.Event()
        self._audio_came = asyncio.Event()
        self._stop_came = asyncio.Event()
        # Like ACS, the line streams audio all the time: silence while the caller is quiet.
        self._speaking = asyncio.Lock()
        self._reader = asyncio.create_task(self._read())
        self._line: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                body: dict[str, Any] = json.loads(message.data)
                now = time.monotonic()
                if body.get("Kind") == "AudioData":
                    pcm = base64.b64decode(body["AudioData"]["Data"])
                    if self.heard.first_audio_at is None:
                        self.heard.first_audio_at = now
                    self.heard.audio += pcm
                    self.audible_until = max(now, self.audible_until) + len(pcm) / 32_000
                    self.last_audio_at = now
                    self._audio_came.set()
                elif body.get("Kind") == "StopAudio":
                    self.heard.stops.append(now)
                    self.heard.cut.append(len(self.heard.audio))
                    self.heard.audio = bytearray()
                    self.audible_until = now
                    self._stop_came.set()
        finally:
            self.closed.set()

    async def start(self, sample_rate: int = 16_000, *, open_line: bool = True) -> None:
        await self.ws.send_str(metadata(sample_rate))
        if open_line:
            self._line = asyncio.create_task(self._quiet_line())

    async def _quiet_line(self) -> None:
        frame = audio_frame(SILENCE)
        while not self.ws.closed:
            async with self._speaking:
                await self.ws.send_str(frame)
            await asyncio.sleep(0.02)

    async def speech(self, text: str) -> bytes:
        return b"".join([chunk async for chunk in self._voice.speak(text)])

    async def say(self, text: str, *, realtime: bool = False, trailing_silence_s: float = 1.0) -> None:
        """Speaks `text`, then stays silent long enough for the bot to take its turn."""
        await self.send_audio(
            await self.speech(text) + SILENCE * int(trailing_silence_s / 0.02), realtime=realtime
        )

    async def send_audio(self, pcm: bytes, *, realtime: bool = False) -> None:
        async with self._speaking:
            start = time.monotonic()
            for index, offset in enumerate(range(0, len(pcm), FRAME_BYTES)):
                frame = pcm[offset : offset + FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
                await self.ws.send_str(audio_frame(frame))
                if realtime:
                    await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - time.monotonic()))

    async def press(self, keys: str) -> None:
        await self.ws.send_str(keys_frame(keys))

    async def listen(self, *, timeout_s: float = 30.0, quiet_s: float = 1.5) -> Heard:
        """Waits until the bot has spoken and finished (its audio played out and nothing
        more for `quiet_s`); answers what it said and starts a new record."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = time.monotonic()
            if self.heard.audio and now > self.audible_until and now - self.last_audio_at > quiet_s:
                break
            if self.closed.is_set():
                break
            await asyncio.sleep(0.05)
        heard, self.heard = self.heard, Heard()
        return heard

    async def first_words(self, timeout_s: float = 30.0) -> None:
        """Waits until the bot's next answer starts playing."""
        self._audio_came.clear()
        if self.heard.first_audio_at is None:
            async with asyncio.timeout(timeout_s):
                await self._audio_came.wait()

    async def stopped(self, timeout_s: float) -> bool:
        """Waits for a StopAudio; False when none came in time."""
        if self.heard.stops:
            return True
        self._stop_came.clear()
        try:
            async with asyncio.timeout(timeout_s):
                await self._stop_came.wait()
        except TimeoutError:
            return False
        return True

    async def hang_up(self) -> None:
        if self._line is not None:
            self._line.cancel()
            await asyncio.gather(self._line, return_exceptions=True)
        await self.ws.close()
        await self._reader
