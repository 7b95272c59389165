"""The `openai` SDK clients both the chat model and the cloud embeddings use.

One place decides how Aftercare authenticates to Azure OpenAI (a key, or Entra ID with
`DefaultAzureCredential` when no key is set) and to OpenAI or an OpenAI-compatible
server. The SDK's own retries are off: the callers own their retry policy.
"""

from __future__ import annotations

from typing import Any

from providers.config import ProviderSettings
from shop.errors import ConfigurationError

_AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"


def azure_openai_client(settings: ProviderSettings) -> Any:
    """An `openai.AsyncAzureOpenAI` for AZURE_OPENAI_ENDPOINT, by key or Entra ID."""
    openai = _openai_sdk("azure")
    auth: dict[str, Any] = {"api_key": settings.azure_openai_api_key}
    if not settings.azure_openai_api_key:
        from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

        auth = {"azure_ad_token_provider": get_bearer_token_provider(DefaultAzureCredential(), _AZURE_SCOPE)}
    return openai.AsyncAzureOpenAI(
        azure_endpoint=settings.azure_openai_endpoint,
        api_version=settings.azure_openai_api_version,
        max_retries=0,
        **auth,
    )


def openai_client(settings: ProviderSettings) -> Any:
    """An `openai.AsyncOpenAI` for OpenAI, or for OPENAI_BASE_URL (Ollama, vLLM ...)."""
    openai = _openai_sdk("openai")
    return openai.AsyncOpenAI(
        base_url=settings.openai_base_url or None,
        # A local OpenAI-compatible server ignores the key but the SDK wants one.
        api_key=settings.openai_api_key or "not-needed",
        max_retries=0,
    )


def _openai_sdk(provider: str) -> Any:
    try:
        import openai
    except ImportError as exc:
        raise ConfigurationError(f"the '{provider}' provider needs pip install 'aftercare[openai]'") from exc
    return openai
