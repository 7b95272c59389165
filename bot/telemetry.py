"""Observing a running bot: where traces go, `/metrics`, and log lines fit for a log store.

- Traces: every layer records spans through `shop.telemetry`; `install_tracing` gives the
  process a tracer provider that exports them to Azure Monitor (Application Insights,
  when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set), to an OTLP collector
  (`OTEL_EXPORTER_OTLP_ENDPOINT`), or to the console (`TRACE_EXPORTER=console`). With
  none the spans cost next to nothing: the API's no-op tracer answers.
- Metrics: Prometheus text at `/metrics`, from loopback, or with `METRICS_TOKEN` as a
  bearer token from anywhere.
- Logs: `LOG_FORMAT=json` writes one JSON object per line with the conversation id of
  the turn that wrote it; every line, in either format, has card numbers, email
  addresses and phone numbers masked.
"""

from __future__ import annotations

import hmac
import logging
import re
from contextvars import ContextVar
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.channels.http import is_loopback
from bot.errors import Unauthorized
from dialogs.entities import EMAIL_PATTERN
from providers.safety.redaction import redact

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

# The conversation a log line was written for (set for the length of a turn).
CONVERSATION: ContextVar[str | None] = ContextVar("aftercare_conversation", default=None)

# A phone number: "+" and 8 to 15 digits, spaces or dashes between groups.
_PHONE = re.compile(r"(?<![\w+])\+\d(?:[ -]?\d){7,14}(?!\w)")


class TraceExporter(StrEnum):
    AUTO = "auto"  # Azure Monitor if its connection string is set, else OTLP if its endpoint is
    NONE = "none"
    CONSOLE = "console"
    OTLP = "otlp"
    AZURE = "azure"


class TelemetrySettings(Protocol):
    @property
    def trace_exporter(self) -> TraceExporter: ...
    @property
    def applicationinsights_connection_string(self) -> str: ...
    @property
    def otel_exporter_otlp_endpoint(self) -> str: ...
    @property
    def log_level(self) -> str: ...
    @property
    def log_format(self) -> str: ...


def chosen_exporter(settings: TelemetrySettings) -> TraceExporter:
    if settings.trace_exporter != TraceExporter.AUTO:
        return settings.trace_exporter
    if settings.applicationinsights_connection_string:
        return TraceExporter.AZURE
    if settings.otel_exporter_otlp_endpoint:
        return TraceExporter.OTLP
    return TraceExporter.NONE


def install_tracing(settings: TelemetrySettings) -> TracerProvider | None:
    """Makes the process's spans go where the settings say; returns the tracer provider
    (to `shutdown()` at exit), or None when traces go nowhere. Once per process."""
    exporter_kind = chosen_exporter(settings)
    if exporter_kind == TraceExporter.NONE:
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if exporter_kind == TraceExporter.AZURE:
        from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

        exporter = AzureMonitorTraceExporter(connection_string=settings.applicationinsights_connection_string)
    elif exporter_kind == TraceExporter.OTLP:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces")
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "aftercare"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logging.getLogger(__name__).info("traces go to %s", exporter_kind.value)
    return provider


def mask(text: str) -> str:
    """A log line without card numbers, email addresses or phone numbers."""
    masked = redact(text).text
    masked = EMAIL_PATTERN.sub("[email]", masked)
    return _PHONE.sub(lambda m: m.group(0)[:3] + "…" + m.group(0)[-2:], masked)


class RedactingFilter(logging.Filter):
    """Masks what a log line must not hold and adds the turn's conversation id."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        record.conversation_id = CONVERSATION.get()
        return True


def configure_logging(settings: TelemetrySettings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(conversation_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)


class MetricsEndpoint:
    """`GET /metrics`: the process's Prometheus metrics."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def handle(self, request: web.Request) -> web.Response:
        if self._token:
            header = request.headers.get("Authorization", "")
            offered = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
            if not hmac.compare_digest(offered.encode("utf-8", "surrogateescape"), self._token.encode()):
                raise Unauthorized("metrics need the METRICS_TOKEN bearer token")
        elif not is_loopback(request):
            raise Unauthorized("metrics are served to this machine only unless METRICS_TOKEN is set")
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
