"""Every setting Aftercare reads, typed and validated once at start-up.

Values come from environment variables or a `.env` file in the working directory.
The Bot Framework names (`MicrosoftAppId` ...) are kept as Azure Bot Service and the
BotBuilder samples spell them, so an existing bot registration drops in unchanged.
Nothing else in the code base reads the environment: the stores and providers are built
from a `Settings` (which satisfies their factories' protocols) in the app's lifecycle.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.handoff.records import HandoffMode
from bot.telemetry import TraceExporter
from providers.config import (
    EmbeddingsProvider,
    LlmProvider,
    SafetyProvider,
    SentimentProvider,
    SpeechProvider,
)
from shop.dataset import SHIPPED_DATASET_DIR
from shop.errors import ConfigurationError
from shop.store.factory import StoreKind


class AppType(StrEnum):
    MULTI_TENANT = "MultiTenant"
    SINGLE_TENANT = "SingleTenant"
    USER_ASSIGNED_MSI = "UserAssignedMSI"


class Settings(BaseSettings):
    """The app's configuration. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    # Bot Framework registration (empty app id = anonymous local mode).
    app_id: str = Field("", alias="MicrosoftAppId")
    app_password: str = Field("", alias="MicrosoftAppPassword")
    app_type: AppType = Field(AppType.MULTI_TENANT, alias="MicrosoftAppType")
    app_tenant_id: str = Field("", alias="MicrosoftAppTenantId")
    # Where /api/messages fetches the Bot Framework signing keys; override only for tests
    # or sovereign clouds.
    openid_metadata_url: str = Field("", alias="BOT_OPENID_METADATA_URL")

    # HTTP server.
    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(3978, alias="PORT", ge=0, le=65535)
    public_url: str = Field("", alias="PUBLIC_URL")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    # The Web Chat bundle the page loads (npm's botframework-webchat; `make install` puts it here).
    webchat_bundle: Path = Field(
        Path("node_modules/botframework-webchat/dist/webchat.js"), alias="WEBCHAT_BUNDLE"
    )

    # Public endpoints answer 429 with Retry-After past their budgets (per app instance).
    rate_limits: bool = Field(True, alias="RATE_LIMITS")
    # Proxies in front of the app that add the client's address to X-Forwarded-For (App
    # Service, Container Apps: 1); 0 = the connection's own address.
    trusted_proxy_hops: int = Field(0, alias="TRUSTED_PROXY_HOPS", ge=0, le=5)
    # Who may show the Web Chat page in a frame (CSP frame-ancestors), e.g. "'self' https://shop.example".
    frame_ancestors: str = Field("'self'", alias="FRAME_ANCESTORS", min_length=1, max_length=500)

    # The local Direct Line channel service.
    direct_line_secret: str = Field("", alias="DIRECT_LINE_SECRET")
    direct_line_token_ttl_s: int = Field(1800, alias="DIRECT_LINE_TOKEN_TTL_S", ge=60, le=86400)
    # A customer message acknowledged this long ago with no answer and no turn running for
    # it here lost its turn (its instance died): it is answered then. Longer than any turn
    # (LLM_TURN_DEADLINE_S), so a sibling instance still working on it is never doubled.
    direct_line_replay_after_s: float = Field(30.0, alias="DIRECT_LINE_REPLAY_AFTER_S", ge=1, le=3600)

    # Order store.
    store: StoreKind = Field(StoreKind.SQLITE, alias="STORE")
    sqlite_path: Path = Field(Path("data/aftercare.sqlite3"), alias="SQLITE_PATH")
    cosmos_endpoint: str = Field("", alias="COSMOS_ENDPOINT")
    cosmos_key: str = Field("", alias="COSMOS_KEY")
    cosmos_database: str = Field("aftercare", alias="COSMOS_DATABASE")
    # false: the deployment owns the database and containers (deployment/infra creates them);
    # the app only reads them, as a data-plane role without control-plane rights must.
    cosmos_create_containers: bool = Field(True, alias="COSMOS_CREATE_CONTAINERS")
    # The demo shop shipped inside the package, wherever it is installed.
    dataset_dir: Path = Field(SHIPPED_DATASET_DIR, alias="DATASET_DIR")
    seed_on_start: bool = Field(True, alias="SEED_ON_START")

    # Conversation data (state, the Direct Line log, handoffs) is deleted this many days
    # after its last write; prompts/knowledge/privacy.md tells customers 90.
    retention_days: int = Field(90, alias="RETENTION_DAYS", ge=1, le=3650)

    # Observability. Traces go to Application Insights when its connection string is set,
    # else to an OTLP collector when its endpoint is (TRACE_EXPORTER=auto); `console` prints
    # them, `none` keeps them in. TRACE_CONTENT=true lets spans carry message text and tool
    # arguments; off, they hold names, ids, counts, durations and outcomes only.
    trace_exporter: TraceExporter = Field(TraceExporter.AUTO, alias="TRACE_EXPORTER")
    trace_content: bool = Field(False, alias="TRACE_CONTENT")
    applicationinsights_connection_string: str = Field("", alias="APPLICATIONINSIGHTS_CONNECTION_STRING")
    otel_exporter_otlp_endpoint: str = Field("", alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    # `text` for people, `json` (one object per line, with the conversation id) for a log store.
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")
    # /metrics is served to this machine only, or to anyone with this bearer token.
    metrics_token: str = Field("", alias="METRICS_TOKEN")

    # Chat model. `offline` (the default) answers with the offline policy engine alone.
    llm_provider: LlmProvider = Field(LlmProvider.OFFLINE, alias="LLM_PROVIDER")
    azure_openai_endpoint: str = Field("", alias="AZURE_OPENAI_ENDPOINT")
    azure_openai_api_key: str = Field("", alias="AZURE_OPENAI_API_KEY")
    azure_openai_api_version: str = Field("2024-10-21", alias="AZURE_OPENAI_API_VERSION")
    azure_openai_chat_deployment: str = Field("", alias="AZURE_OPENAI_CHAT_DEPLOYMENT")
    openai_base_url: str = Field("", alias="OPENAI_BASE_URL")
    openai_api_key: str = Field("", alias="OPENAI_API_KEY")
    openai_model: str = Field("gpt-4o-mini", alias="OPENAI_MODEL")
    llm_request_timeout_s: float = Field(15.0, alias="LLM_REQUEST_TIMEOUT_S", gt=0, le=300)
    llm_turn_deadline_s: float = Field(25.0, alias="LLM_TURN_DEADLINE_S", gt=0, le=600)
    llm_max_retries: int = Field(2, alias="LLM_MAX_RETRIES", ge=0, le=10)
    llm_breaker_failures: int = Field(3, alias="LLM_BREAKER_FAILURES", ge=1, le=100)
    llm_breaker_cooldown_s: float = Field(30.0, alias="LLM_BREAKER_COOLDOWN_S", gt=0, le=3600)
    # Human agents. `console`: the app's own queue and agent console at /agent;
    # `external`: a contact centre takes over through the Bot Framework handoff events.
    handoff_mode: HandoffMode = Field(HandoffMode.CONSOLE, alias="HANDOFF_MODE")
    # Told to customers who ask for a person while no agent is online.
    support_hours: str = Field(
        "Monday to Friday, 9:00 to 17:00 (US Eastern time)",
        alias="SUPPORT_HOURS",
        min_length=3,
        max_length=200,
    )
    # The customer's sentiment per message: `local` (VADER with the shop's rules) or
    # `chat_model` (the configured chat model, which reads sarcasm; VADER when it fails).
    sentiment_provider: SentimentProvider = Field(SentimentProvider.LOCAL, alias="SENTIMENT_PROVIDER")
    # Product suggestions at the end of a happy conversation (`off` turns them off).
    recommendations: bool = Field(True, alias="RECOMMENDATIONS")
    # Content safety on customers' messages (abuse, prompt injection) and the model's
    # answers: `local` (the embedded rules), `azure` (Azure AI Content Safety and Prompt
    # Shields beside the local rules: an endpoint, and a key or Entra ID) or `off`.
    content_safety: SafetyProvider = Field(SafetyProvider.LOCAL, alias="CONTENT_SAFETY")
    azure_content_safety_endpoint: str = Field("", alias="AZURE_CONTENT_SAFETY_ENDPOINT")
    azure_content_safety_key: str = Field("", alias="AZURE_CONTENT_SAFETY_KEY")
    # Embeddings for the offline engine's intents and the policy search. `local` is the
    # embedded all-MiniLM-L6-v2; `azure` / `openai` use the endpoints configured above.
    embeddings_provider: EmbeddingsProvider = Field(EmbeddingsProvider.LOCAL, alias="EMBEDDINGS_PROVIDER")
    azure_openai_embedding_deployment: str = Field("", alias="AZURE_OPENAI_EMBEDDING_DEPLOYMENT")
    openai_embedding_model: str = Field("text-embedding-3-small", alias="OPENAI_EMBEDDING_MODEL")
    # Teams throttles a stream that updates more often than about once a second.
    stream_update_interval_s: float = Field(1.0, alias="STREAM_UPDATE_INTERVAL_S", ge=0, le=10)
    # Threads of the local embedding model's forward pass; 0 = one core fewer than the
    # machine has (at least one), so the event loop keeps a core while the model runs.
    embedding_threads: int = Field(0, alias="EMBEDDING_THREADS", ge=0, le=256)

    # Phone calls. Speech: `local` (silero VAD, pocketsphinx, Piper; offline) or `azure`
    # (Azure AI Speech: a key and region, or an endpoint and the managed identity).
    speech_provider: SpeechProvider = Field(SpeechProvider.LOCAL, alias="SPEECH_PROVIDER")
    azure_speech_key: str = Field("", alias="AZURE_SPEECH_KEY")
    azure_speech_region: str = Field("", alias="AZURE_SPEECH_REGION")
    azure_speech_endpoint: str = Field("", alias="AZURE_SPEECH_ENDPOINT")
    # The Speech resource's id, for Entra ID tokens (managed identity) instead of a key.
    azure_speech_resource_id: str = Field("", alias="AZURE_SPEECH_RESOURCE_ID")
    azure_speech_voice: str = Field("en-US-AvaMultilingualNeural", alias="AZURE_SPEECH_VOICE")
    # Calls one instance takes at once; a call past it hears a short apology and ends.
    voice_max_calls: int = Field(20, alias="VOICE_MAX_CALLS", ge=1, le=1000)
    # Silence that ends a caller's turn.
    voice_end_silence_ms: int = Field(500, alias="VOICE_END_SILENCE_MS", ge=100, le=3000)
    # A call that sends no audio at all for this long is ended.
    voice_idle_timeout_s: float = Field(30.0, alias="VOICE_IDLE_TIMEOUT_S", gt=0, le=3600)
    # Azure Communication Services (Call Automation) answers the shop's phone number:
    # a connection string, or an endpoint and the managed identity. Unset: the call
    # webhooks answer 503 and /api/voice serves local clients only.
    acs_connection_string: str = Field("", alias="ACS_CONNECTION_STRING")
    acs_endpoint: str = Field("", alias="ACS_ENDPOINT")
    # The secret in the Event Grid subscription's URL (`/api/calls/incoming?secret=...`):
    # only Event Grid knows it, so no one else can make the app answer calls. Required with ACS.
    acs_webhook_secret: str = Field("", alias="ACS_WEBHOOK_SECRET", max_length=256)

    @property
    def embedding_thread_count(self) -> int:
        return self.embedding_threads or max(1, (os.cpu_count() or 1) - 1)

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper

    @field_validator(
        "public_url",
        "cosmos_endpoint",
        "openid_metadata_url",
        "azure_openai_endpoint",
        "openai_base_url",
        "azure_speech_endpoint",
        "acs_endpoint",
        "azure_content_safety_endpoint",
    )
    @classmethod
    def _http_url_or_empty(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("acs_webhook_secret")
    @classmethod
    def _url_safe_secret(cls, value: str) -> str:
        # It travels in a URL's query: letters, digits and -._~ need no escaping anywhere.
        if value and (len(value) < 16 or not re.fullmatch(r"[A-Za-z0-9._~-]+", value)):
            raise ValueError(
                "must be at least 16 characters of letters, digits and -._~ (openssl rand -hex 32)"
            )
        return value

    @property
    def anonymous(self) -> bool:
        """True when no Bot Framework app id is set: local use, no JWT validation."""
        return not self.app_id

    def validate_combinations(self) -> None:
        """Checks that involve more than one setting; raises `ConfigurationError`."""
        if self.app_id and not self.app_password and self.app_type != AppType.USER_ASSIGNED_MSI:
            raise ConfigurationError(
                "MicrosoftAppPassword is required when MicrosoftAppId is set "
                "(unless MicrosoftAppType is UserAssignedMSI)"
            )
        if self.app_type == AppType.SINGLE_TENANT and self.app_id and not self.app_tenant_id:
            raise ConfigurationError("MicrosoftAppTenantId is required when MicrosoftAppType is SingleTenant")
        if self.seed_on_start and not (self.dataset_dir / "orders.json").is_file():
            # Starting with no customers would look like a working bot that can verify nobody.
            raise ConfigurationError(
                f"DATASET_DIR: {self.dataset_dir} holds no retail dataset (users.json, orders.json, "
                "products.json); unset it to use the shipped demo shop, or set SEED_ON_START=false"
            )
        if self.store == StoreKind.COSMOS and not self.cosmos_endpoint:
            raise ConfigurationError("COSMOS_ENDPOINT is required when STORE=cosmos")
        if self.llm_provider == LlmProvider.AZURE:
            for name, value in (
                ("AZURE_OPENAI_ENDPOINT", self.azure_openai_endpoint),
                ("AZURE_OPENAI_CHAT_DEPLOYMENT", self.azure_openai_chat_deployment),
            ):
                if not value:
                    raise ConfigurationError(f"{name} is required when LLM_PROVIDER=azure")
        if (
            self.sentiment_provider == SentimentProvider.CHAT_MODEL
            and self.llm_provider == LlmProvider.OFFLINE
        ):
            raise ConfigurationError("SENTIMENT_PROVIDER=chat_model needs a chat model: set LLM_PROVIDER")
        if self.embeddings_provider == EmbeddingsProvider.AZURE:
            for name, value in (
                ("AZURE_OPENAI_ENDPOINT", self.azure_openai_endpoint),
                ("AZURE_OPENAI_EMBEDDING_DEPLOYMENT", self.azure_openai_embedding_deployment),
            ):
                if not value:
                    raise ConfigurationError(f"{name} is required when EMBEDDINGS_PROVIDER=azure")
        if self.embeddings_provider == EmbeddingsProvider.OPENAI and not (
            self.openai_api_key or self.openai_base_url
        ):
            raise ConfigurationError(
                "OPENAI_API_KEY (or OPENAI_BASE_URL for a local server) is required "
                "when EMBEDDINGS_PROVIDER=openai"
            )
        if self.speech_provider == SpeechProvider.AZURE and not (
            (self.azure_speech_key and (self.azure_speech_region or self.azure_speech_endpoint))
            or (self.azure_speech_endpoint and self.azure_speech_resource_id)
        ):
            raise ConfigurationError(
                "SPEECH_PROVIDER=azure needs AZURE_SPEECH_KEY with AZURE_SPEECH_REGION (or "
                "AZURE_SPEECH_ENDPOINT), or AZURE_SPEECH_ENDPOINT with AZURE_SPEECH_RESOURCE_ID "
                "for the managed identity"
            )
        if (self.acs_connection_string or self.acs_endpoint) and not self.public_url:
            raise ConfigurationError(
                "PUBLIC_URL (the app's public https:// address) is required when ACS is "
                "configured: calls send their events and audio to it"
            )
        if (self.acs_connection_string or self.acs_endpoint) and not self.acs_webhook_secret:
            raise ConfigurationError(
                "ACS_WEBHOOK_SECRET is required when ACS is configured: Event Grid sends it with "
                "every incoming call (/api/calls/incoming?secret=...), so nobody else can make the app answer"
            )
        if self.content_safety == SafetyProvider.AZURE and not self.azure_content_safety_endpoint:
            raise ConfigurationError(
                "AZURE_CONTENT_SAFETY_ENDPOINT is required when CONTENT_SAFETY=azure "
                "(e.g. https://<resource>.cognitiveservices.azure.com)"
            )
        if self.llm_provider == LlmProvider.OPENAI and not (self.openai_api_key or self.openai_base_url):
            raise ConfigurationError(
                "OPENAI_API_KEY (or OPENAI_BASE_URL for a local server) is required when LLM_PROVIDER=openai"
            )


def _variable_name(location: tuple[Any, ...]) -> str:
    field_name = str(location[0]) if location else "?"
    field = Settings.model_fields.get(field_name)
    if field is not None and field.alias:
        return field.alias
    return field_name


def load_settings(**overrides: Any) -> Settings:
    """Reads and validates the settings, or raises `ConfigurationError` naming the variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{_variable_name(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigurationError(f"invalid configuration: {problems}") from None
    settings.validate_combinations()
    return settings
