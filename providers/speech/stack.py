"""The phone channel's ears and voice, loaded once: at start-up where calls are expected
(ACS configured), otherwise when the first call comes in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from providers.speech.base import SpeechToText, TextToSpeech


class SpeechStack:
    def __init__(self, build: Callable[[], Awaitable[tuple[SpeechToText, TextToSpeech]]]) -> None:
        self._build = build
        self._loaded: tuple[SpeechToText, TextToSpeech] | None = None
        self._loading: asyncio.Task[tuple[SpeechToText, TextToSpeech]] | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    async def ready(self) -> tuple[SpeechToText, TextToSpeech]:
        """The started providers; the first caller loads them, the others wait for that."""
        if self._loaded is not None:
            return self._loaded
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        try:
            self._loaded = await asyncio.shield(self._loading)
        except BaseException:
            if self._loading.done():
                self._loading = None  # a failed load is tried again by the next call
            raise
        return self._loaded

    async def _load(self) -> tuple[SpeechToText, TextToSpeech]:
        stt, tts = await self._build()
        try:
            await asyncio.gather(stt.start(), tts.start())
        except BaseException:
            await asyncio.gather(stt.aclose(), tts.aclose(), return_exceptions=True)
            raise
        return stt, tts

    async def aclose(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        if self._loaded is not None:
            stt, tts = self._loaded
            self._loaded = None
            await asyncio.gather(stt.aclose(), tts.aclose(), return_exceptions=True)
