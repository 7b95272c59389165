"""Observability: the spans a conversation produces (one trace per turn, with the tool,
model and store spans under it, and no customer text unless TRACE_CONTENT allows it),
`/metrics` after some load, and log lines without card numbers, emails or phone numbers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.service import create_app
from bot.settings import Settings
from bot.telemetry import CONVERSATION, RedactingFilter, mask
from dialogs import OfflineResources
from tests.gpt.test_gpt_directline import IVAN_EMAIL, shop_model, turn
from tests.handoff.conftest import say, texts
from tests.support.directline import start_conversation
from tests.support.scripted_openai import ScriptedOpenAI


class _Recorder(SpanProcessor):
    """Hands spans to the in-memory exporter only while a test records (other tests run
    in the same process with the same global provider)."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.recording = False
        self._inner = SimpleSpanProcessor(exporter)

    def on_end(self, span: ReadableSpan) -> None:
        if self.recording:
            self._inner.on_end(span)


@pytest.fixture(scope="session")
def span_recorder() -> tuple[_Recorder, InMemorySpanExporter]:
    """The process's tracer provider with an in-memory exporter (a provider is set once per process)."""
    exporter = InMemorySpanExporter()
    recorder = _Recorder(exporter)
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(recorder)
    return recorder, exporter


@pytest.fixture
def spans(span_recorder: tuple[_Recorder, InMemorySpanExporter]) -> Iterator[InMemorySpanExporter]:
    recorder, exporter = span_recorder
    exporter.clear()
    recorder.recording = True
    yield exporter
    recorder.recording = False
    exporter.clear()


@pytest.fixture
async def traced_app(
    scripted: ScriptedOpenAI, make_settings: Callable[..., Settings], offline_resources: OfflineResources
) -> AsyncIterator[TestServer]:
    scripted.responder = shop_model
    settings = make_settings(
        LLM_PROVIDER="openai", OPENAI_BASE_URL=f"{scripted.base_url}/v1", LLM_MAX_RETRIES=0
    )
    server = TestServer(create_app(settings, offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def _attributes_text(span: ReadableSpan) -> str:
    return " ".join(f"{key}={value}" for key, value in (span.attributes or {}).items())


async def test_each_turn_is_one_trace_with_its_tool_model_and_store_spans_and_no_customer_text(
    traced_app: TestServer, spans: InMemorySpanExporter, http: aiohttp.ClientSession
) -> None:
    conversation = await start_conversation(http, str(traced_app.make_url("")).rstrip("/"))
    await turn(conversation, f"hi, my email is {IVAN_EMAIL}")
    await turn(conversation, "where is my order?")

    finished = list(spans.get_finished_spans())
    turns = [s for s in finished if s.name == "turn"]
    assert len(turns) == 2, [s.name for s in finished]
    assert len({s.context.trace_id for s in turns}) == 2, "each turn is its own trace"
    by_id = {s.context.span_id: s for s in finished}

    def root(span: ReadableSpan) -> ReadableSpan:
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
        return span

    for turn_span in turns:
        inside = [
            s for s in finished if s.context.trace_id == turn_span.context.trace_id and s is not turn_span
        ]
        names = {s.name for s in inside}
        assert {"tool", "model.chat"} <= names and names & {"store.read", "store.write"}, names
        assert all(root(s) is turn_span for s in inside), "a span outside its turn's tree"
        assert turn_span.attributes is not None and turn_span.attributes["aftercare.engine"] == "gpt"
    tools = [s for s in finished if s.name == "tool"]
    assert {s.attributes["aftercare.tool"] for s in tools if s.attributes} >= {
        "find_user_id_by_email",
        "get_order_details",
    }
    models = [s for s in finished if s.name == "model.chat"]
    assert all(s.attributes and s.attributes["gen_ai.usage.input_tokens"] >= 1 for s in models)

    # Payload-free by default: neither the email nor the question is in any span.
    everything = " ".join(_attributes_text(s) for s in finished)
    assert IVAN_EMAIL not in everything and "where is my order" not in everything


async def test_trace_content_puts_the_customers_words_on_the_turn(
    scripted: ScriptedOpenAI,
    make_settings: Callable[..., Settings],
    offline_resources: OfflineResources,
    spans: InMemorySpanExporter,
    http: aiohttp.ClientSession,
) -> None:
    server = TestServer(create_app(make_settings(TRACE_CONTENT=True), offline_resources=offline_resources))
    await server.start_server()
    try:
        conversation = await start_conversation(http, str(server.make_url("")).rstrip("/"))
        await turn(conversation, "what is your return policy?")
    finally:
        await server.close()
    turns = [s for s in spans.get_finished_spans() if s.name == "turn"]
    assert turns and turns[-1].attributes is not None
    assert turns[-1].attributes["aftercare.text"] == "what is your return policy?"
    assert turns[-1].attributes["aftercare.engine"] == "offline"


async def _metric(http: aiohttp.ClientSession, base_url: str, name: str, **labels: str) -> float:
    async with http.get(f"{base_url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_move_with_load(traced_app: TestServer, http: aiohttp.ClientSession) -> None:
    base_url = str(traced_app.make_url("")).rstrip("/")
    before: dict[str, Any] = {
        "turns": await _metric(http, base_url, "aftercare_turns_total", channel="directline", engine="gpt"),
        "tokens": await _metric(http, base_url, "aftercare_model_tokens_total", kind="prompt"),
        "tools": await _metric(http, base_url, "aftercare_tool_calls_total", tool="find_user_id_by_email"),
        "store": await _metric(http, base_url, "aftercare_store_calls_total", store="sqlite", outcome="ok"),
        "latency": await _metric(http, base_url, "aftercare_turn_seconds_count", channel="directline"),
    }
    for _ in range(3):
        conversation = await start_conversation(http, base_url)
        await turn(conversation, f"hi, my email is {IVAN_EMAIL}")
    after = {
        "turns": await _metric(http, base_url, "aftercare_turns_total", channel="directline", engine="gpt"),
        "tokens": await _metric(http, base_url, "aftercare_model_tokens_total", kind="prompt"),
        "tools": await _metric(http, base_url, "aftercare_tool_calls_total", tool="find_user_id_by_email"),
        "store": await _metric(http, base_url, "aftercare_store_calls_total", store="sqlite", outcome="ok"),
        "latency": await _metric(http, base_url, "aftercare_turn_seconds_count", channel="directline"),
    }
    assert after["turns"] - before["turns"] == 3
    assert after["tools"] - before["tools"] == 3
    assert after["tokens"] > before["tokens"]
    assert after["store"] > before["store"]
    assert after["latency"] - before["latency"] == 3


async def test_metrics_are_for_this_machine_or_the_token_holder(
    make_settings: Callable[..., Settings], offline_resources: OfflineResources, http: aiohttp.ClientSession
) -> None:
    server = TestServer(
        create_app(make_settings(METRICS_TOKEN="s3cret-metrics-token"), offline_resources=offline_resources)
    )
    await server.start_server()
    try:
        url = str(server.make_url("/metrics"))
        async with http.get(url) as response:
            assert response.status == 401
            assert "METRICS_TOKEN" in (await response.json())["error"]["message"]
        async with http.get(url, headers={"Authorization": "Bearer s3cret-metrics-token"}) as response:
            assert response.status == 200 and "aftercare_turns_total" in await response.text()
    finally:
        await server.close()


def test_log_lines_carry_the_conversation_and_no_card_email_or_phone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert mask("card 4111 1111 1111 1111, mail a.b@example.com, call +1 555 010 0123") == (
        "card [card number removed], mail [email], call +1 …23"
    )
    logger = logging.getLogger("aftercare.test")
    logger.addFilter(RedactingFilter())
    token = CONVERSATION.set("conv-42")
    try:
        with caplog.at_level(logging.INFO, logger="aftercare.test"):
            logger.info("customer %s paid with %s", "a.b@example.com", "4111-1111-1111-1111")
    finally:
        CONVERSATION.reset(token)
        logger.filters.clear()
    (record,) = [r for r in caplog.records if r.name == "aftercare.test"]
    assert record.getMessage() == "customer [email] paid with [card number removed]"
    assert getattr(record, "conversation_id", None) == "conv-42"


async def test_a_card_number_reaches_no_span_even_with_trace_content_on(
    make_settings: Callable[..., Settings],
    offline_resources: OfflineResources,
    spans: InMemorySpanExporter,
    http: aiohttp.ClientSession,
) -> None:
    server = TestServer(create_app(make_settings(TRACE_CONTENT=True), offline_resources=offline_resources))
    await server.start_server()
    try:
        conversation = await start_conversation(http, str(server.make_url("")).rstrip("/"))
        answer = texts(await say(conversation, "my card is 4111 1111 1111 1111, can you refund to it?"))
    finally:
        await server.close()
    assert "removed" in answer.lower(), answer
    finished = spans.get_finished_spans()
    turns = [s for s in finished if s.name == "turn"]
    assert turns and "card number removed" in str((turns[-1].attributes or {}).get("aftercare.text"))
    everything = " ".join(_attributes_text(s) for s in finished)
    assert "4111" not in everything.replace(" ", "")
