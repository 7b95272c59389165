"""What the provider factory reads from the app's settings.

`bot.settings.Settings` satisfies `ProviderSettings` structurally, so this layer needs
no import from the service above it; a test or a command-line tool may pass any object
with these attributes. The enums live here because the providers define their choices.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class LlmProvider(StrEnum):
    OFFLINE = "offline"
    AZURE = "azure"
    OPENAI = "openai"


class EmbeddingsProvider(StrEnum):
    LOCAL = "local"
    AZURE = "azure"
    OPENAI = "openai"


class SentimentProvider(StrEnum):
    LOCAL = "local"
    CHAT_MODEL = "chat_model"


class SpeechProvider(StrEnum):
    LOCAL = "local"
    AZURE = "azure"


class SafetyProvider(StrEnum):
    LOCAL = "local"
    AZURE = "azure"
    OFF = "off"


class ProviderSettings(Protocol):
    """The settings the providers are built from (read-only attributes)."""

    @property
    def llm_provider(self) -> LlmProvider: ...
    @property
    def embeddings_provider(self) -> EmbeddingsProvider: ...
    @property
    def azure_openai_endpoint(self) -> str: ...
    @property
    def azure_openai_api_key(self) -> str: ...
    @property
    def azure_openai_api_version(self) -> str: ...
    @property
    def azure_openai_chat_deployment(self) -> str: ...
    @property
    def azure_openai_embedding_deployment(self) -> str: ...
    @property
    def openai_base_url(self) -> str: ...
    @property
    def openai_api_key(self) -> str: ...
    @property
    def openai_model(self) -> str: ...
    @property
    def openai_embedding_model(self) -> str: ...
    @property
    def llm_request_timeout_s(self) -> float: ...
    @property
    def llm_max_retries(self) -> int: ...
    @property
    def llm_breaker_failures(self) -> int: ...
    @property
    def llm_breaker_cooldown_s(self) -> float: ...
    @property
    def embedding_thread_count(self) -> int: ...
    @property
    def sentiment_provider(self) -> SentimentProvider: ...


class SpeechSettings(Protocol):
    """The settings the phone channel's speech is built from."""

    @property
    def speech_provider(self) -> SpeechProvider: ...
    @property
    def azure_speech_key(self) -> str: ...
    @property
    def azure_speech_region(self) -> str: ...
    @property
    def azure_speech_endpoint(self) -> str: ...
    @property
    def azure_speech_voice(self) -> str: ...
    @property
    def voice_max_calls(self) -> int: ...
    @property
    def voice_end_silence_ms(self) -> int: ...


class SafetySettings(Protocol):
    """The settings content safety is built from."""

    @property
    def content_safety(self) -> SafetyProvider: ...
    @property
    def azure_content_safety_endpoint(self) -> str: ...
    @property
    def azure_content_safety_key(self) -> str: ...
