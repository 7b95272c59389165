"""What every layer records about its work: OpenTelemetry spans and Prometheus metrics.

Spans go through the OpenTelemetry API (`span`): a no-op until the app installs a tracer
provider (`bot.telemetry`), so the domain, the providers and the dialogs record without
knowing where traces go. Whether a span may carry what customers wrote (message text,
tool arguments) is decided per turn by the app (`content_allowed`): off, a span holds
names, ids, counts, durations and outcomes only.

The metrics are prometheus_client's, on its default registry: a process serves one
`/metrics`, and a counter belongs to the process, not to an app object, so they are
declared here once, like the SDK's own examples, rather than passed to every layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram

_CONTENT: ContextVar[bool] = ContextVar("aftercare_trace_content", default=False)
_TRACER = "aftercare"

# Seconds: turns take tens of milliseconds offline and seconds with a model.
_TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30)
_VOICE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2, 3, 5)

TURNS = Counter("aftercare_turns_total", "Customer turns answered", ["channel", "engine"])
TURN_SECONDS = Histogram(
    "aftercare_turn_seconds", "Time to answer a customer turn", ["channel", "engine"], buckets=_TURN_BUCKETS
)
TURN_ERRORS = Counter("aftercare_turn_errors_total", "Turns that failed and were apologised for", ["channel"])
TOOL_CALLS = Counter("aftercare_tool_calls_total", "Tool calls by the dialog engines", ["tool", "outcome"])
MODEL_CALLS = Counter("aftercare_model_calls_total", "Chat model calls", ["model", "outcome"])
MODEL_TOKENS = Counter("aftercare_model_tokens_total", "Chat model tokens", ["model", "kind"])
MODEL_SECONDS = Histogram("aftercare_model_seconds", "Chat model call time", ["model"], buckets=_TURN_BUCKETS)
FALLBACKS = Counter(
    "aftercare_fallbacks_total", "Turns the offline engine answered for the chat model", ["reason"]
)
STORE_CALLS = Counter("aftercare_store_calls_total", "Store operations", ["store", "operation", "outcome"])
RECOMMENDATIONS = Counter(
    "aftercare_recommendation_gate_total", "The product-suggestion gate's decisions", ["outcome"]
)
HANDOFFS = Counter("aftercare_handoffs_total", "Conversations handed to a person", ["trigger"])
HANDOFF_QUEUE = Gauge("aftercare_handoff_queue_length", "Conversations waiting for a person")
HANDOFF_WAIT = Histogram(
    "aftercare_handoff_wait_seconds",
    "Time from a handoff to an agent taking the conversation",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
VOICE_LATENCY = Histogram(
    "aftercare_voice_response_seconds",
    "Caller's end of speech to the bot's first audio, by stage",
    ["stage"],
    buckets=_VOICE_BUCKETS,
)
CALLS_ACTIVE = Gauge("aftercare_calls_active", "Phone calls in progress on this instance")


def content_allowed() -> bool:
    """Whether spans recorded now may carry what the customer wrote."""
    return _CONTENT.get()


@contextlib.contextmanager
def content_policy(allowed: bool) -> Iterator[None]:
    """Sets, for the work inside (a turn), whether spans may carry message text."""
    token = _CONTENT.set(allowed)
    try:
        yield
    finally:
        _CONTENT.reset(token)


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span]:
    """A span named `name` under the current one; an exception marks it failed and goes on."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        # No tracing installed: the API's no-op span would still build its attributes and
        # swap the context twice (about 7 µs, a dozen times a turn), for nothing.
        yield trace.INVALID_SPAN
        return
    tracer = trace.get_tracer(_TRACER)
    with tracer.start_as_current_span(
        name, attributes={k: v for k, v in attributes.items() if v is not None}
    ) as current:
        yield current


def set_content(current: Span, key: str, text: str) -> None:
    """Puts customer-written text on a span, only where the turn allows it."""
    if content_allowed():
        current.set_attribute(key, text[:2000])


def fail(current: Span, reason: str) -> None:
    current.set_status(Status(StatusCode.ERROR, reason))
