"""ACS Call Automation (the `azure-voice` extra): answers a ringing call with its audio
streamed both ways to the app's WebSocket, and translates the SDK's errors.

`bot.channels.calls` imports this module only when ACS is configured, so the app runs
without the extra installed.
"""

from __future__ import annotations

from typing import Any

from azure.communication.callautomation import (
    AudioFormat,
    MediaStreamingAudioChannelType,
    MediaStreamingContentType,
    MediaStreamingOptions,
    StreamingTransportType,
)
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, HttpResponseError

from bot.channels.calls import AnswerFailed
from bot.settings import Settings
from shop.errors import ConfigurationError

# azure-core's transport options for the client. Event Grid waits 30 s for the webhook's
# answer while the caller hears ringing: two quick retries fit in that; more would only
# overlap Event Grid's own retry of the whole delivery.
CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 2,
    "retry_backoff_factor": 0.5,
    "connection_timeout": 5,
    "read_timeout": 8,
}


class AcsCallAnswerer:
    """Answers calls through Call Automation's async client (nothing blocks the event loop)."""

    def __init__(self, client: CallAutomationClient, credential: AsyncTokenCredential | None = None) -> None:
        self._client = client
        self._credential = credential

    @classmethod
    def from_settings(cls, settings: Settings, **client_options: Any) -> AcsCallAnswerer:
        """From ACS_CONNECTION_STRING (an access key), else ACS_ENDPOINT with the app's
        Entra ID identity (`DefaultAzureCredential`: the managed identity on Azure).
        `client_options` override `CLIENT_OPTIONS` (a CA bundle, timeouts, retries)."""
        options = {**CLIENT_OPTIONS, **client_options}
        if settings.acs_connection_string:
            try:
                client = CallAutomationClient.from_connection_string(
                    settings.acs_connection_string, **options
                )
            except ValueError:
                raise ConfigurationError(
                    "ACS_CONNECTION_STRING: not a Communication Services connection string "
                    "(endpoint=https://<resource>.communication.azure.com/;accesskey=<key>)"
                ) from None
            return cls(client)
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
        return cls(CallAutomationClient(settings.acs_endpoint, credential, **options), credential)

    async def answer(self, incoming_call_context: str, callback_url: str, media_url: str) -> str:
        """Answers the call: its events go to `callback_url`, its audio (PCM 16 kHz mono,
        the caller's alone, DTMF tones included) both ways over the WebSocket `media_url`,
        starting at once. Returns ACS's call connection id; raises `AnswerFailed`."""
        streaming = MediaStreamingOptions(
            transport_url=media_url,
            transport_type=StreamingTransportType.WEBSOCKET,
            content_type=MediaStreamingContentType.AUDIO,
            audio_channel_type=MediaStreamingAudioChannelType.UNMIXED,
            start_media_streaming=True,
            enable_bidirectional=True,
            audio_format=AudioFormat.PCM16_K_MONO,
            enable_dtmf_tones=True,
        )
        try:
            connection = await self._client.answer_call(
                incoming_call_context=incoming_call_context,
                callback_url=callback_url,
                media_streaming=streaming,
            )
        except HttpResponseError as exc:
            status = exc.status_code
            # No status: the credential could not get a token (identity endpoint down ...).
            transient = status is None or status in (408, 429) or status >= 500
            raise AnswerFailed(f"ACS answered {status}: {_first_line(exc)}", transient=transient) from exc
        except AzureError as exc:  # no connection, or no response in time
            raise AnswerFailed(f"ACS could not be reached: {_first_line(exc)}", transient=True) from exc
        return connection.call_connection_id or ""

    async def aclose(self) -> None:
        await self._client.close()
        if self._credential is not None:
            await self._credential.close()


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    return text.splitlines()[0][:300] if text else type(exc).__name__
