"""Azure AI Speech: continuous recognition from a push stream, with a phrase list of the
shop's customer and product names, and neural voices from SSML, streamed as they are
synthesised. A key and region (or endpoint), or an endpoint and Entra ID (the managed
identity), so production needs no key.

The SDK calls back on its own threads; events are handed to the event loop with
`call_soon_threadsafe`, and its blocking `.get()`s run on this provider's threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from providers.speech.base import SAMPLE_RATE, Expectation, Heard, SpeechStarted, Utterance, Vocabulary
from shop.errors import ConfigurationError, SpeechUnavailable

log = logging.getLogger(__name__)

# Azure's phrase lists take up to 500 phrases.
_MAX_PHRASES = 500


def _sdk() -> Any:
    try:
        import azure.cognitiveservices.speech as speechsdk
    except ImportError:
        raise ConfigurationError(
            "SPEECH_PROVIDER=azure needs the Azure Speech SDK: install the `azure-voice` extra "
            "(pip install 'aftercare[azure-voice]')"
        ) from None
    return speechsdk


class AzureSpeechConfig:
    """How to reach the Speech resource: key + region, key + endpoint, or endpoint + Entra ID."""

    def __init__(self, *, key: str, region: str, endpoint: str, voice: str, end_silence_ms: int) -> None:
        self.key, self.region, self.endpoint, self.voice = key, region, endpoint, voice
        self.end_silence_ms = end_silence_ms

    def build(self) -> Any:
        speechsdk = _sdk()
        if self.key and self.region:
            config = speechsdk.SpeechConfig(subscription=self.key, region=self.region)
        elif self.key:
            config = speechsdk.SpeechConfig(subscription=self.key, endpoint=self.endpoint)
        else:
            from azure.identity import DefaultAzureCredential

            config = speechsdk.SpeechConfig(token_credential=DefaultAzureCredential(), endpoint=self.endpoint)
        config.speech_recognition_language = "en-US"
        config.speech_synthesis_voice_name = self.voice
        config.set_speech_synthesis_output_format(speechsdk.SpeechSynthesisOutputFormat.Raw16Khz16BitMonoPcm)
        config.set_property(
            speechsdk.PropertyId.Speech_SegmentationSilenceTimeoutMs, str(self.end_silence_ms)
        )
        return config


class AzureSpeechToText:
    name = "Azure AI Speech (continuous recognition)"

    def __init__(self, config: AzureSpeechConfig, vocabulary: Vocabulary, *, max_calls: int) -> None:
        self._config = config
        self._phrases = _phrases(vocabulary)
        self._max_calls = max_calls
        self._calls = 0
        self._executor = ThreadPoolExecutor(4, thread_name_prefix="speech-azure-stt")
        self._speech_config: Any = None

    async def start(self) -> None:
        self._speech_config = self._config.build()

    async def listener(self) -> AzureListener:
        if self._calls >= self._max_calls:
            raise SpeechUnavailable("every phone line is busy")
        self._calls += 1
        listener = AzureListener(self._speech_config, self._phrases, self._executor, self._call_ended)
        try:
            await listener.open()
        except BaseException:
            self._calls -= 1
            raise
        return listener

    @property
    def calls_in_progress(self) -> int:
        return self._calls

    def _call_ended(self) -> None:
        self._calls -= 1

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class AzureListener:
    """One call's continuous recognition; Azure's own segmentation ends each turn."""

    def __init__(
        self, speech_config: Any, phrases: list[str], executor: ThreadPoolExecutor, ended: Any
    ) -> None:
        self._speech_config = speech_config
        self._phrases = phrases
        self._executor = executor
        self._ended = ended
        self._events: list[Heard] = []
        self._in_speech = False
        self._recognizer: Any = None
        self._stream: Any = None
        self._failure: str | None = None

    async def open(self) -> None:
        speechsdk = _sdk()
        loop = asyncio.get_running_loop()
        audio_format = speechsdk.audio.AudioStreamFormat(
            samples_per_second=SAMPLE_RATE, bits_per_sample=16, channels=1
        )
        self._stream = speechsdk.audio.PushAudioInputStream(stream_format=audio_format)
        self._recognizer = speechsdk.SpeechRecognizer(
            speech_config=self._speech_config, audio_config=speechsdk.audio.AudioConfig(stream=self._stream)
        )
        phrase_list = speechsdk.PhraseListGrammar.from_recognizer(self._recognizer)
        for phrase in self._phrases:
            phrase_list.addPhrase(phrase)

        def recognizing(event: Any) -> None:
            loop.call_soon_threadsafe(self._on_partial)

        def recognized(event: Any) -> None:
            if event.result.reason == speechsdk.ResultReason.RecognizedSpeech:
                loop.call_soon_threadsafe(self._on_final, event.result.text)

        def canceled(event: Any) -> None:
            details = event.cancellation_details
            if details.reason == speechsdk.CancellationReason.Error:
                loop.call_soon_threadsafe(self._on_failure, f"{details.error_code}: {details.error_details}")

        self._recognizer.recognizing.connect(recognizing)
        self._recognizer.recognized.connect(recognized)
        self._recognizer.canceled.connect(canceled)
        await loop.run_in_executor(
            self._executor, lambda: self._recognizer.start_continuous_recognition_async().get()
        )

    def _on_partial(self) -> None:
        if not self._in_speech:
            self._in_speech = True
            self._events.append(SpeechStarted(at=time.monotonic()))

    def _on_final(self, text: str) -> None:
        self._in_speech = False
        now = time.monotonic()
        self._events.append(Utterance(text=text, confidence=1.0, ended_at=now, speech_ended_at=now))

    def _on_failure(self, reason: str) -> None:
        log.warning("Azure Speech recognition failed: %s", reason)
        self._failure = reason

    def expect(self, expecting: Expectation) -> None:
        # Continuous recognition keeps one phrase list for the call; the shop's names and
        # products are in it from the start.
        return

    async def hear(self, pcm: bytes) -> list[Heard]:
        if self._failure is not None:
            raise SpeechUnavailable("speech recognition failed")
        self._stream.write(pcm)  # copies into the SDK's buffer; does not block
        events, self._events = self._events, []
        return events

    async def aclose(self) -> None:
        if self._recognizer is None:
            return
        recognizer, self._recognizer = self._recognizer, None
        self._stream.close()
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: recognizer.stop_continuous_recognition_async().get()
            )
        except Exception as exc:
            log.info("Azure Speech did not stop cleanly: %s", exc)
        finally:
            self._ended()


class AzureTextToSpeech:
    name = "Azure AI Speech (neural voice)"

    def __init__(self, config: AzureSpeechConfig) -> None:
        self._config = config
        self._speech_config: Any = None

    async def start(self) -> None:
        self._speech_config = self._config.build()

    async def speak(self, text: str) -> AsyncIterator[bytes]:
        speechsdk = _sdk()
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        synthesizer = speechsdk.SpeechSynthesizer(speech_config=self._speech_config, audio_config=None)
        failure: list[str] = []

        def synthesizing(event: Any) -> None:
            loop.call_soon_threadsafe(chunks.put_nowait, bytes(event.result.audio_data))

        def completed(event: Any) -> None:
            loop.call_soon_threadsafe(chunks.put_nowait, None)

        def canceled(event: Any) -> None:
            details = event.result.cancellation_details
            failure.append(f"{details.reason}: {details.error_details}")
            loop.call_soon_threadsafe(chunks.put_nowait, None)

        synthesizer.synthesizing.connect(synthesizing)
        synthesizer.synthesis_completed.connect(completed)
        synthesizer.synthesis_canceled.connect(canceled)
        synthesizer.speak_ssml_async(self.ssml(text))  # returns at once; events carry the audio
        try:
            while (chunk := await chunks.get()) is not None:
                yield chunk
        finally:
            if failure:
                log.warning("Azure Speech synthesis failed: %s", failure[0])
            synthesizer.stop_speaking_async()
        if failure:
            raise SpeechUnavailable("speech synthesis failed")

    def ssml(self, text: str) -> str:
        return (
            '<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">'
            f"<voice name={quoteattr(self._config.voice)}>{escape(text)}</voice></speak>"
        )

    async def aclose(self) -> None:
        self._speech_config = None


def _phrases(vocabulary: Vocabulary) -> list[str]:
    names = sorted({*vocabulary.first_names, *vocabulary.last_names})
    return (names + sorted(set(vocabulary.products)))[:_MAX_PHRASES]
