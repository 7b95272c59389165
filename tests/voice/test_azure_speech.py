"""Azure AI Speech as the phone channel's provider, up to the SDK's own network calls
(which cannot be made from here): the settings it needs, the SDK configuration it builds,
and the SSML it speaks."""

from __future__ import annotations

import pytest

from bot.settings import load_settings
from providers.config import SpeechProvider
from providers.factory import build_speech
from providers.speech import Vocabulary
from providers.speech.azure import AzureSpeechConfig, AzureSpeechToText, AzureTextToSpeech, _phrases
from shop.errors import ConfigurationError


def config(**overrides: object) -> AzureSpeechConfig:
    values: dict[str, object] = {
        "key": "0" * 32,
        "region": "eastus",
        "endpoint": "",
        "voice": "en-US-AvaMultilingualNeural",
        "end_silence_ms": 500,
    }
    values.update(overrides)
    return AzureSpeechConfig(**values)  # type: ignore[arg-type]


def test_azure_speech_needs_a_key_and_region_or_an_endpoint_and_identity() -> None:
    with pytest.raises(ConfigurationError, match="AZURE_SPEECH_KEY"):
        load_settings(_env_file=None, SPEECH_PROVIDER="azure")
    with pytest.raises(ConfigurationError, match="AZURE_SPEECH_RESOURCE_ID"):
        load_settings(
            _env_file=None,
            SPEECH_PROVIDER="azure",
            AZURE_SPEECH_ENDPOINT="https://shop.cognitiveservices.azure.com",
        )
    keyed = load_settings(
        _env_file=None, SPEECH_PROVIDER="azure", AZURE_SPEECH_KEY="k" * 32, AZURE_SPEECH_REGION="eastus"
    )
    assert keyed.speech_provider == SpeechProvider.AZURE
    managed = load_settings(
        _env_file=None,
        SPEECH_PROVIDER="azure",
        AZURE_SPEECH_ENDPOINT="https://shop.cognitiveservices.azure.com/",
        AZURE_SPEECH_RESOURCE_ID="/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/shop",
    )
    assert managed.azure_speech_endpoint == "https://shop.cognitiveservices.azure.com"


def test_the_factory_builds_azure_providers_when_chosen() -> None:
    settings = load_settings(
        _env_file=None, SPEECH_PROVIDER="azure", AZURE_SPEECH_KEY="k" * 32, AZURE_SPEECH_REGION="eastus"
    )
    stt, tts = build_speech(settings, Vocabulary(first_names=("Amelia",), last_names=("Wilson",)))
    assert isinstance(stt, AzureSpeechToText) and isinstance(tts, AzureTextToSpeech)


def test_the_sdk_configuration_asks_for_call_audio_and_the_end_silence() -> None:
    import azure.cognitiveservices.speech as speechsdk

    built = config(end_silence_ms=450).build()
    assert built.speech_synthesis_voice_name == "en-US-AvaMultilingualNeural"
    assert built.speech_recognition_language == "en-US"
    assert built.get_property(speechsdk.PropertyId.Speech_SegmentationSilenceTimeoutMs) == "450"
    by_endpoint = config(region="", endpoint="https://shop.cognitiveservices.azure.com").build()
    assert by_endpoint.speech_recognition_language == "en-US"


def test_ssml_escapes_what_the_bot_says_and_names_the_voice() -> None:
    tts = AzureTextToSpeech(config(voice='en-US-Ava"Neural'))
    ssml = tts.ssml("Order <W1> & 'returns' > 30 days")
    assert "Order &lt;W1&gt; &amp; 'returns' &gt; 30 days" in ssml
    assert "name='en-US-Ava\"Neural'" in ssml or 'name="en-US-Ava&quot;Neural"' in ssml
    assert ssml.startswith("<speak") and ssml.endswith("</speak>")


def test_the_phrase_list_holds_the_shops_names_within_azures_limit() -> None:
    many = Vocabulary(
        first_names=tuple(f"First{i}" for i in range(400)),
        last_names=tuple(f"Last{i}" for i in range(400)),
        products=("Electric Kettle", "Garden Hose"),
    )
    phrases = _phrases(many)
    assert len(phrases) == 500
    assert len(_phrases(Vocabulary(first_names=("Amelia",), products=("Garden Hose",)))) == 2
