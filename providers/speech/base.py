"""The speech protocols: voice activity, speech to text, text to speech.

Audio everywhere is what a phone call streams: 16-bit little-endian PCM, 16 kHz, mono.
A call gets its own `Listener` (its ears: audio in, turn events out); the voice
(`TextToSpeech`) is shared by every call. Nothing here blocks the event loop: models
run on the provider's own threads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

SAMPLE_RATE = 16_000
BYTES_PER_SAMPLE = 2

# What the bot's last question expects, so recognition can listen for it: a yes or no,
# digits typed or said one by one, a zip code, an order id ("W" and seven digits), a
# name with a zip code; anything else is dictation.
Expectation = Literal["dictation", "yes_no", "digits", "zip", "order_id", "identity"]


@dataclass(frozen=True)
class SpeechStarted:
    """The caller started speaking (the moment barge-in cuts the bot's voice)."""

    at: float  # time.monotonic() when the speech was detected


@dataclass(frozen=True)
class Utterance:
    """What the caller said in one turn."""

    text: str
    confidence: float  # 0..1, the recognizer's own scale
    ended_at: float  # time.monotonic() when the recognizer decided the turn was over
    speech_ended_at: float  # when the last voiced audio arrived (the caller stopped)


Heard = SpeechStarted | Utterance


@dataclass(frozen=True)
class Vocabulary:
    """Words the shop's callers say that a general model hears badly: customers' names
    and product names (a grammar on pocketsphinx, a phrase list on Azure)."""

    first_names: tuple[str, ...] = ()
    last_names: tuple[str, ...] = ()
    products: tuple[str, ...] = ()


class VoiceActivity(Protocol):
    """Per call: how likely a window of audio is speech."""

    @property
    def window_samples(self) -> int: ...

    def speech_probability(self, window: np.ndarray) -> float:
        """`window`: float32 samples in [-1, 1], exactly `window_samples` long. Cheap and
        synchronous; called on the listener's thread."""
        ...


class Listener(Protocol):
    """One call's ears."""

    async def hear(self, pcm: bytes) -> list[Heard]:
        """Takes the next piece of the caller's audio; answers what it completed."""
        ...

    def expect(self, expecting: Expectation) -> None:
        """What the bot just asked for; applies from the caller's next utterance."""
        ...

    async def aclose(self) -> None: ...


class SpeechToText(Protocol):
    name: str

    async def start(self) -> None:
        """Loads what every call shares (models), off the event loop."""
        ...

    async def listener(self) -> Listener: ...

    @property
    def calls_in_progress(self) -> int:
        """Listeners lent and not yet closed: what a call that ended must give back."""
        ...

    async def aclose(self) -> None: ...


class TextToSpeech(Protocol):
    name: str

    async def start(self) -> None: ...

    def speak(self, text: str) -> AsyncIterator[bytes]:
        """The text as call audio, sentence by sentence: the first sentence is out
        before the last is synthesised."""
        ...

    async def aclose(self) -> None: ...
