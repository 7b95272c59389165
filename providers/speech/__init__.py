"""Speech for the phone channel: the protocols (`base`), the offline stack (`local`:
silero VAD, pocketsphinx, Piper) and Azure AI Speech (`azure`), chosen in
`providers.factory.build_speech`."""

from providers.speech.base import (
    Expectation,
    Heard,
    Listener,
    SpeechStarted,
    SpeechToText,
    TextToSpeech,
    Utterance,
    Vocabulary,
    VoiceActivity,
)

__all__ = [
    "Expectation",
    "Heard",
    "Listener",
    "SpeechStarted",
    "SpeechToText",
    "TextToSpeech",
    "Utterance",
    "Vocabulary",
    "VoiceActivity",
]
