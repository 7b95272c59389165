"""What the GPT dialog adds around the model: CPU, allocations and first-token latency per turn.

The model answers instantly (it costs nothing), so everything measured is ours: the
`openai` SDK's request building and stream parsing, `OpenAIChatModel`'s resilience
wrapper, `GptDialog`'s prompt assembly, state bookkeeping and tool calls, and the store
reads a tool makes (SQLite, the full retail dataset, on a temporary file).

The instant model is an in-process `httpx2` transport that answers every
chat-completions request with pre-rendered Server-Sent Events, the same chunks the
scripted OpenAI server (tests/support/scripted_openai.py) streams, one event per
network read. A second run sends the same turns to that scripted server over loopback
HTTP, as the app would talk to a local OpenAI-compatible server.

Scenarios:
- `answer`: one model call streaming a ~300-character answer (38 chunks).
- `tool+answer`: the model calls `get_order_details` (a point read for the verified
  customer), then streams the answer: two model calls and one tool per turn.
- `sdk only`: the `answer` stream through the bare `openai` client, without the dialog:
  what the SDK alone costs, to split the figures.

Figures per scenario: CPU ms per turn (process CPU, tracemalloc off), wall ms per turn
(turns run one after another), p50/p99 of the time from the first content token leaving
the transport (received from the model) to `on_text` being called with it (forwarded),
then with tracemalloc on: peak KiB allocated during a turn and KiB retained per turn.

Run: `.venv/bin/python -m bench.gpt_overhead [--turns 300]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import openai

from dialogs.gpt import GptDialog, GptPrompts
from dialogs.tools.runner import ToolRunner
from dialogs.turn import Channel, DialogState, EngineName, Reply
from providers.llm.openai_compatible import CircuitBreaker, OpenAIChatModel
from shop.dataset import SHIPPED_DATASET_DIR, import_dataset
from shop.retail import RetailService
from shop.store.sqlite import SqliteStore
from tests.support.scripted_openai import ScriptedOpenAI

ROOT = Path(__file__).resolve().parents[1]
DATASET_DIR = SHIPPED_DATASET_DIR
CUSTOMER = "sofia_rossi_8776"
ORDER = "#W5918442"
ANSWER = (
    "Your order #W5918442 is pending: it has not shipped yet, so you can still change or "
    "cancel it. It holds two items, paid by credit card. Once it ships you will get a "
    "tracking number by email. Is there anything else I can help you with today?"
)
_FIRST_CONTENT = re.compile(rb'"content": "[^"]')

Step = dict[str, Any]


@dataclass
class Timings:
    """When the first content token left the transport and when `on_text` saw it."""

    received_at: float | None = None
    forwarded_at: float | None = None
    added_ms: list[float] = field(default_factory=list)

    def start_turn(self) -> None:
        self.received_at = self.forwarded_at = None

    def end_turn(self) -> None:
        if self.received_at is not None and self.forwarded_at is not None:
            self.added_ms.append((self.forwarded_at - self.received_at) * 1000)


class _TimedEvents(httpx2.AsyncByteStream):
    """A response body that notes when the first content token passes through it."""

    def __init__(self, chunks: httpx2.AsyncByteStream, timings: Timings) -> None:
        self._chunks = chunks
        self._timings = timings

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            if self._timings.received_at is None and _FIRST_CONTENT.search(chunk):
                self._timings.received_at = time.perf_counter()
            yield chunk

    async def aclose(self) -> None:
        # Closing the real body hands its connection back to the pool.
        await self._chunks.aclose()


class _Replay(httpx2.AsyncByteStream):
    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self._events:
            yield event


class InstantModel(httpx2.AsyncBaseTransport):
    """Answers chat completions at once with pre-rendered SSE events, one per read."""

    def __init__(self, timings: Timings) -> None:
        self._timings = timings
        self._scripted = ScriptedOpenAI()  # only its chunking, so both runs stream the same
        self._rendered: dict[str, list[bytes]] = {}
        self.next_steps: list[Step] = []

    def _events(self, step: Step) -> list[bytes]:
        key = json.dumps(step, sort_keys=True)
        if key not in self._rendered:
            chunks = self._scripted._chunks({"model": "instant"}, step)
            events = [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]
            self._rendered[key] = [*events, b"data: [DONE]\n\n"]
        return self._rendered[key]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        step = self.next_steps.pop(0)
        return httpx2.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_TimedEvents(_Replay(self._events(step)), self._timings),
            request=request,
        )


class TimedNetwork(httpx2.AsyncBaseTransport):
    """The real HTTP transport, noting when the first content token comes off the socket."""

    def __init__(self, timings: Timings) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._timings = timings

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_TimedEvents(response.stream, self._timings),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _NoFallback:
    """The offline engine's place; a turn that falls back is a failed measurement."""

    name: EngineName = "offline"

    async def respond(
        self, text: str, value: dict[str, Any] | None, state: DialogState, channel: Channel
    ) -> list[Reply]:
        raise AssertionError(f"the GPT dialog fell back to the offline engine on {text!r}")


def _state_with_history() -> DialogState:
    """A verified customer a few turns into the conversation."""
    state = DialogState(verified_user_id=CUSTOMER, customer_first_name="Sofia")
    for n in range(3):
        state.turn += 1
        state.record_user(f"Question {n} about my order {ORDER}, when will it arrive?")
        state.record_bot([Reply(text=ANSWER, engine="gpt")])
    return state


SCENARIOS: dict[str, list[Step]] = {
    "answer": [{"text": ANSWER}],
    "tool+answer": [
        {"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": ORDER}}]},
        {"text": ANSWER},
    ],
}


@dataclass
class Row:
    scenario: str
    transport: str
    cpu_ms: float
    wall_ms: float
    added_ms: list[float]
    peak_kib: float | None = None
    retained_kib: float | None = None


Turn = Callable[[], Awaitable[None]]


async def _measure(turn: Turn, turns: int, timings: Timings) -> tuple[float, float]:
    for _ in range(20):  # warm-up: imports, caches, connections
        timings.start_turn()
        await turn()
    timings.added_ms.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(turns):
        timings.start_turn()
        await turn()
        timings.end_turn()
    return (time.process_time() - cpu) * 1000 / turns, (time.perf_counter() - wall) * 1000 / turns


async def _allocations(turn: Turn, turns: int) -> tuple[float, float]:
    """Peak KiB above the baseline during one turn (the largest), and KiB kept per turn."""
    tracemalloc.start()
    try:
        await turn()
        start, _ = tracemalloc.get_traced_memory()
        peaks = []
        for _ in range(turns):
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            await turn()
            _, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - before)
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return statistics.median(peaks) / 1024, (end - start) / 1024 / turns


def _dialog(client: openai.AsyncOpenAI, tools: ToolRunner) -> GptDialog:
    model = OpenAIChatModel(
        client,
        "instant",
        name="openai",
        request_timeout_s=15,
        max_retries=0,
        breaker=CircuitBreaker(failures=3, cooldown_s=30),
    )
    return GptDialog(model, tools, _NoFallback(), prompts=GptPrompts.load())


Queue = Callable[[list[Step]], None]


def _dialog_turn(dialog: GptDialog, steps: list[Step], queue: Queue, timings: Timings) -> Turn:
    channel = Channel(id="directline")
    template = _state_with_history()

    async def on_text(text: str) -> None:
        if timings.forwarded_at is None:
            timings.forwarded_at = time.perf_counter()

    async def turn() -> None:
        queue(steps)
        state = template.model_copy(deep=True)
        replies = await dialog.respond(f"Where is my order {ORDER}?", None, state, channel, on_text=on_text)
        assert replies and replies[0].engine == "gpt", replies

    return turn


def _sdk_turn(client: openai.AsyncOpenAI, queue: Queue, timings: Timings) -> Turn:
    messages: list[Any] = [{"role": "user", "content": f"Where is my order {ORDER}?"}]

    async def turn() -> None:
        queue(SCENARIOS["answer"])
        stream = await client.chat.completions.create(
            model="instant", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta is not None and choice.delta.content and timings.forwarded_at is None:
                    timings.forwarded_at = time.perf_counter()

    return turn


async def run(turns: int, store: SqliteStore) -> list[Row]:
    rows: list[Row] = []
    tools = ToolRunner(RetailService(store))

    timings = Timings()
    instant = InstantModel(timings)
    client = openai.AsyncOpenAI(
        api_key="not-needed",
        base_url="http://instant.invalid/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=instant),
    )

    def queue_instant(steps: list[Step]) -> None:
        instant.next_steps[:] = steps

    dialog = _dialog(client, tools)
    cases: list[tuple[str, Turn]] = [
        (name, _dialog_turn(dialog, steps, queue_instant, timings)) for name, steps in SCENARIOS.items()
    ]
    cases.append(("sdk only", _sdk_turn(client, queue_instant, timings)))
    for name, turn in cases:
        cpu_ms, wall_ms = await _measure(turn, turns, timings)
        peak, retained = await _allocations(turn, min(turns, 100))
        rows.append(Row(name, "in-process", cpu_ms, wall_ms, list(timings.added_ms), peak, retained))
    await client.close()

    # The same dialog against the scripted server over loopback HTTP (its CPU is in this
    # process too, so only latency is reported).
    scripted = ScriptedOpenAI()
    await scripted.start()
    timings = Timings()
    network = httpx2.AsyncClient(transport=TimedNetwork(timings))
    client = openai.AsyncOpenAI(
        api_key="not-needed", base_url=f"{scripted.base_url}/v1", max_retries=0, http_client=network
    )
    try:
        dialog = _dialog(client, tools)
        for name, steps in SCENARIOS.items():
            turn = _dialog_turn(dialog, steps, lambda s: scripted.script(*s), timings)
            _, wall_ms = await _measure(turn, turns, timings)
            rows.append(Row(name, "loopback HTTP", float("nan"), wall_ms, list(timings.added_ms)))
    finally:
        await client.close()
        await scripted.close()
    return rows


async def _open_store(folder: Path) -> SqliteStore:
    store = await SqliteStore.open(folder / "retail.sqlite3")
    await import_dataset(store, DATASET_DIR, progress=False)
    return store


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def main_async(turns: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = await _open_store(Path(folder))
        try:
            rows = await run(turns, store)
        finally:
            await store.aclose()
    print(f"GPT dialog overhead, instant model, {turns} turns per row, {os.cpu_count()} cores")
    print(
        f"{'scenario':<13}{'transport':<15}{'CPU ms':>8}{'wall ms':>9}{'1st token +ms p50':>19}"
        f"{'p99':>7}{'peak KiB':>10}{'kept KiB':>10}"
    )
    for r in rows:
        peak = f"{r.peak_kib:>10.0f}" if r.peak_kib is not None else f"{'-':>10}"
        kept = f"{r.retained_kib:>10.2f}" if r.retained_kib is not None else f"{'-':>10}"
        cpu = f"{r.cpu_ms:>8.2f}" if r.cpu_ms == r.cpu_ms else f"{'-':>8}"
        print(
            f"{r.scenario:<13}{r.transport:<15}{cpu}{r.wall_ms:>9.2f}"
            f"{_percentile(r.added_ms, 0.5):>19.3f}{_percentile(r.added_ms, 0.99):>7.3f}{peak}{kept}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main_async(args.turns))


if __name__ == "__main__":
    main()
