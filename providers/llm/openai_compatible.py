"""The chat model over Azure OpenAI, OpenAI or any OpenAI-compatible server (`openai` SDK).

One implementation of `providers.llm.base.ChatModel` over `openai.AsyncOpenAI` /
`AsyncAzureOpenAI` that streams, collects tool calls and usage, and owns the resilience
policy: a per-turn deadline, `Retry-After` on 429, bounded jittered retries on 5xx and
timeouts, and a circuit breaker. The SDK's own retries are switched off because they
know neither the turn's deadline nor the breaker; when the policy gives up it raises
`ModelUnavailable` and the dialog answers that turn with the offline engine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from providers.llm.base import ModelTurn, TextSink, ToolCall, Usage
from shop import telemetry
from shop.errors import ContentFiltered, ModelError, ModelUnavailable

log = logging.getLogger(__name__)


@dataclass
class CircuitBreaker:
    """Opens after `failures` consecutive failed turns; lets one probe through after `cooldown_s`."""

    failures: int
    cooldown_s: float
    clock: Callable[[], float] = time.monotonic
    _consecutive: int = 0
    _open_until: float = 0.0

    @property
    def is_open(self) -> bool:
        return self._consecutive >= self.failures and self.clock() < self._open_until

    def record_success(self) -> None:
        self._consecutive = 0
        self._open_until = 0.0

    def record_failure(self) -> None:
        self._consecutive += 1
        if self._consecutive >= self.failures:
            self._open_until = self.clock() + self.cooldown_s


@dataclass
class _Accumulator:
    """Joins streamed chunks into one answer: text, tool calls by index, usage."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str = ""
    usage: Usage = field(default_factory=Usage)

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(call.get("id", f"call_{i}"), call.get("name", ""), call.get("arguments", ""))
            for i, call in sorted(self.calls.items())
        ]


class OpenAIChatModel:
    """A `ChatModel` over an `openai.AsyncOpenAI` or `AsyncAzureOpenAI` client."""

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        name: str,
        request_timeout_s: float,
        max_retries: int,
        breaker: CircuitBreaker,
    ) -> None:
        self._client = client
        self._model = model
        self.name = name
        self._request_timeout_s = request_timeout_s
        self._max_retries = max_retries
        self.breaker = breaker

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        *,
        deadline: float,
        on_text: TextSink | None = None,
    ) -> ModelTurn:
        """One model answer, traced (a span with the token usage) and counted."""
        started = time.perf_counter()
        with telemetry.span(
            "model.chat", **{"gen_ai.request.model": self._model, "gen_ai.system": self.name}
        ) as current:
            try:
                turn = await self._complete(messages, tools, deadline=deadline, on_text=on_text)
            except ModelError as exc:
                outcome = "filtered" if isinstance(exc, ContentFiltered) else "failed"
                telemetry.MODEL_CALLS.labels(self.name, outcome).inc()
                telemetry.fail(current, outcome)
                raise
            finally:
                telemetry.MODEL_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            current.set_attribute("gen_ai.usage.input_tokens", turn.usage.prompt_tokens)
            current.set_attribute("gen_ai.usage.output_tokens", turn.usage.completion_tokens)
            current.set_attribute("aftercare.tool_calls", len(turn.tool_calls))
            telemetry.MODEL_CALLS.labels(self.name, "ok").inc()
            telemetry.MODEL_TOKENS.labels(self.name, "prompt").inc(turn.usage.prompt_tokens)
            telemetry.MODEL_TOKENS.labels(self.name, "completion").inc(turn.usage.completion_tokens)
            return turn

    async def _complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        *,
        deadline: float,
        on_text: TextSink | None = None,
    ) -> ModelTurn:
        import openai

        if self.breaker.is_open:
            raise ModelUnavailable("the model endpoint is failing; the circuit breaker is open")
        loop = asyncio.get_running_loop()
        attempt = 0
        forwarded = False

        async def forward(text: str) -> None:
            nonlocal forwarded
            forwarded = True
            if on_text is not None:
                await on_text(text)

        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.breaker.record_failure()
                raise ModelUnavailable("the turn's deadline passed before the model answered")
            try:
                async with asyncio.timeout(min(self._request_timeout_s, remaining)):
                    turn = await self._call(messages, tools, forward)
            except openai.BadRequestError as exc:
                if _is_content_filter(exc):
                    self.breaker.record_success()  # the endpoint works; it refused the content
                    raise ContentFiltered("the provider's content filter blocked the prompt") from exc
                self.breaker.record_failure()
                log.error("the model rejected the request: %s", exc)
                raise ModelUnavailable("the model rejected the request") from exc
            except openai.RateLimitError as exc:
                delay = _retry_after_s(exc) or _backoff_s(attempt)
                reason = "throttled (429)"
            except (openai.APIConnectionError, TimeoutError) as exc:
                delay, reason = _backoff_s(attempt), f"unreachable or slow ({type(exc).__name__})"
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    self.breaker.record_failure()
                    raise ModelUnavailable(f"the model endpoint answered {exc.status_code}") from exc
                delay, reason = _backoff_s(attempt), f"server error ({exc.status_code})"
            else:
                if turn.finish_reason == "content_filter":
                    self.breaker.record_success()
                    raise ContentFiltered("the provider's content filter blocked the answer")
                self.breaker.record_success()
                return turn
            attempt += 1
            # Text already forwarded cannot be taken back, so such a call is not retried.
            if forwarded or attempt > self._max_retries or loop.time() + delay >= deadline:
                self.breaker.record_failure()
                raise ModelUnavailable(f"the model is {reason}; gave up after {attempt} attempt(s)")
            log.warning("model call %d %s; retrying in %.2f s", attempt, reason, delay)
            await asyncio.sleep(delay)

    async def _call(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], forward: TextSink
    ) -> ModelTurn:
        extra: dict[str, Any] = {}
        if tools:
            # Some OpenAI-compatible servers read a missing tool_choice as "none".
            extra = {"tools": tools, "tool_choice": "auto"}
        stream = await self._client.chat.completions.create(
            model=self._model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
        acc = _Accumulator()
        async for chunk in stream:
            if chunk.usage is not None:
                acc.usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
            for choice in chunk.choices:
                delta = choice.delta
                if delta is not None and delta.content:
                    acc.text.append(delta.content)
                    await forward(delta.content)
                for call in (delta.tool_calls if delta is not None else None) or []:
                    slot = acc.calls.setdefault(call.index, {})
                    if call.id:
                        slot["id"] = call.id
                    if call.function is not None:
                        if call.function.name:
                            slot["name"] = slot.get("name", "") + call.function.name
                        if call.function.arguments:
                            slot["arguments"] = slot.get("arguments", "") + call.function.arguments
                if choice.finish_reason:
                    acc.finish_reason = choice.finish_reason
        return ModelTurn("".join(acc.text), acc.tool_calls(), acc.finish_reason or "stop", acc.usage)

    async def aclose(self) -> None:
        await self._client.close()


def _backoff_s(attempt: int) -> float:
    # Full jitter: spreads retries of many conversations hitting one throttled endpoint.
    return random.uniform(0, min(4.0, 0.25 * 2**attempt))


def _retry_after_s(exc: Any) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def _is_content_filter(exc: Any) -> bool:
    body = getattr(exc, "body", None)
    text = json.dumps(body) if body is not None else str(exc)
    return "content_filter" in text or "ResponsibleAIPolicyViolation" in text
