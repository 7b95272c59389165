"""The one place that chooses each provider from the settings.

Every provider is built here and owned by the app, which closes it (`aclose`) when it
stops. Cloud SDKs are optional extras, imported only when their provider is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

from providers.config import (
    EmbeddingsProvider,
    LlmProvider,
    ProviderSettings,
    SafetyProvider,
    SafetySettings,
    SentimentProvider,
    SpeechProvider,
    SpeechSettings,
)
from providers.embeddings.base import Embeddings
from providers.llm.base import ChatModel
from providers.safety import CombinedSafety, ContentSafety, NoContentSafety
from providers.sentiment import Sentiment
from providers.speech import SpeechToText, TextToSpeech, Vocabulary
from shop.errors import ConfigurationError


def build_chat_model(settings: ProviderSettings) -> ChatModel | None:
    """The configured chat model, or None when LLM_PROVIDER=offline."""
    if settings.llm_provider == LlmProvider.OFFLINE:
        return None
    from providers.llm.openai_compatible import CircuitBreaker, OpenAIChatModel
    from providers.openai_clients import azure_openai_client, openai_client

    azure = settings.llm_provider == LlmProvider.AZURE
    return OpenAIChatModel(
        azure_openai_client(settings) if azure else openai_client(settings),
        settings.azure_openai_chat_deployment if azure else settings.openai_model,
        name="azure-openai" if azure else "openai",
        request_timeout_s=settings.llm_request_timeout_s,
        max_retries=settings.llm_max_retries,
        breaker=CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_cooldown_s),
    )


def build_embeddings(settings: ProviderSettings) -> Embeddings:
    """The configured embeddings: the local model by default, or Azure OpenAI / OpenAI.

    The local model is not loaded here: the app loads it off the event loop at start-up
    (`LocalEmbeddings.load`), since that takes seconds.
    """
    if settings.embeddings_provider == EmbeddingsProvider.LOCAL:
        from providers.embeddings.local import LocalEmbeddings

        return LocalEmbeddings(threads=settings.embedding_thread_count)
    from providers.embeddings.openai_compatible import OpenAIEmbeddings
    from providers.openai_clients import azure_openai_client, openai_client

    if settings.embeddings_provider == EmbeddingsProvider.AZURE:
        return OpenAIEmbeddings(
            azure_openai_client(settings),
            settings.azure_openai_embedding_deployment,
            name=f"{settings.azure_openai_embedding_deployment} (Azure OpenAI)",
            timeout_s=settings.llm_request_timeout_s,
        )
    return OpenAIEmbeddings(
        openai_client(settings),
        settings.openai_embedding_model,
        name=f"{settings.openai_embedding_model} (OpenAI)",
        timeout_s=settings.llm_request_timeout_s,
    )


def build_sentiment(settings: ProviderSettings, model: ChatModel | None) -> Sentiment:
    """VADER with the shop's rules by default; the chat model (falling back to VADER on any
    failure) with SENTIMENT_PROVIDER=chat_model."""
    from providers.sentiment.local import LocalSentiment

    local = LocalSentiment()
    if settings.sentiment_provider == SentimentProvider.LOCAL:
        return local
    if model is None:
        raise ConfigurationError("SENTIMENT_PROVIDER=chat_model needs a chat model: set LLM_PROVIDER")
    from providers.sentiment.chat_model import ChatModelSentiment

    return ChatModelSentiment(model, local)


def build_content_safety(settings: SafetySettings, *, protected: Sequence[str] = ()) -> ContentSafety:
    """The local rules (abuse, prompt injection; answers that repeat a `protected` text such
    as the system prompt) by default; with CONTENT_SAFETY=azure, Azure AI Content Safety and
    Prompt Shields beside them; nothing with `off`."""
    if settings.content_safety == SafetyProvider.OFF:
        return NoContentSafety()
    from providers.safety.local import LocalContentSafety

    local = LocalContentSafety(protected)
    if settings.content_safety == SafetyProvider.LOCAL:
        return local
    from providers.safety.azure import AzureContentSafety

    azure = AzureContentSafety.connect(
        settings.azure_content_safety_endpoint, settings.azure_content_safety_key
    )
    return CombinedSafety([local, azure])


def build_speech(settings: SpeechSettings, vocabulary: Vocabulary) -> tuple[SpeechToText, TextToSpeech]:
    """The phone channel's ears and voice: the offline stack by default, Azure AI Speech
    with SPEECH_PROVIDER=azure. Models load in `start()`, off the event loop."""
    from providers.speech.segmenter import Endpointing

    if settings.speech_provider == SpeechProvider.AZURE:
        from providers.speech.azure import AzureSpeechConfig, AzureSpeechToText, AzureTextToSpeech

        config = AzureSpeechConfig(
            key=settings.azure_speech_key,
            region=settings.azure_speech_region,
            endpoint=settings.azure_speech_endpoint,
            voice=settings.azure_speech_voice,
            end_silence_ms=settings.voice_end_silence_ms,
        )
        return (
            AzureSpeechToText(config, vocabulary, max_calls=settings.voice_max_calls),
            AzureTextToSpeech(config),
        )
    from providers.speech.local import PiperTextToSpeech, PocketsphinxSpeechToText

    endpointing = Endpointing(end_silence_s=settings.voice_end_silence_ms / 1000)
    return (
        PocketsphinxSpeechToText(vocabulary, max_calls=settings.voice_max_calls, endpointing=endpointing),
        PiperTextToSpeech(),
    )
