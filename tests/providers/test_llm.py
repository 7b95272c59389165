"""The chat model over the real `openai` SDK, against the scripted OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bot.settings import Settings
from providers.factory import build_chat_model
from providers.llm import ChatModel
from providers.llm.openai_compatible import OpenAIChatModel
from shop.errors import ContentFiltered, ModelUnavailable
from tests.support.scripted_openai import ScriptedOpenAI

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order_details",
            "description": "Details of one order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]
MESSAGES = [{"role": "user", "content": "Where is my order #W2611340?"}]


@pytest.fixture
def make_model(scripted: ScriptedOpenAI, make_settings: Callable[..., Settings]) -> Callable[..., ChatModel]:
    def make(**overrides: Any) -> ChatModel:
        values = {
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": f"{scripted.base_url}/v1",
            "OPENAI_API_KEY": "test-key",
            "LLM_REQUEST_TIMEOUT_S": 2,
            "LLM_MAX_RETRIES": 2,
        }
        values.update(overrides)
        model = build_chat_model(make_settings(**values))
        assert model is not None
        return model

    return make


def deadline_in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_text_streams_chunk_by_chunk_with_usage(
    scripted: ScriptedOpenAI, make_model: Callable[..., ChatModel]
) -> None:
    scripted.script({"text": "Your order shipped yesterday and arrives Friday."})
    chunks: list[str] = []

    async def sink(text: str) -> None:
        chunks.append(text)

    model = make_model()
    turn = await model.complete(MESSAGES, [], deadline=deadline_in(10), on_text=sink)
    assert turn.text == "Your order shipped yesterday and arrives Friday."
    assert len(chunks) > 3 and "".join(chunks) == turn.text
    assert turn.usage.total_tokens > 0 and turn.finish_reason == "stop"
    assert scripted.requests[0]["stream"] is True
    assert "tool_choice" not in scripted.requests[0]
    await model.aclose()


async def test_tool_calls_are_assembled_and_tool_choice_is_explicit(
    scripted: ScriptedOpenAI, make_model: Callable[..., ChatModel]
) -> None:
    scripted.script({"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": "#W2611340"}}]})
    model = make_model()
    turn = await model.complete(MESSAGES, TOOLS, deadline=deadline_in(10))
    assert [(c.name, c.arguments) for c in turn.tool_calls] == [
        ("get_order_details", '{"order_id": "#W2611340"}')
    ]
    assert scripted.requests[0]["tool_choice"] == "auto"
    assert scripted.requests[0]["tools"][0]["function"]["name"] == "get_order_details"
    await model.aclose()


async def test_429_waits_for_retry_after_then_succeeds(
    scripted: ScriptedOpenAI, make_model: Callable[..., ChatModel]
) -> None:
    scripted.script({"status": 429, "headers": {"retry-after-ms": "300"}}, {"text": "Here you go."})
    model = make_model()
    started = asyncio.get_running_loop().time()
    turn = await model.complete(MESSAGES, [], deadline=deadline_in(10))
    assert turn.text == "Here you go."
    assert len(scripted.requests) == 2
    assert asyncio.get_running_loop().time() - started >= 0.3
    await model.aclose()


async def test_429_beyond_the_deadline_gives_up_at_once(
    scripted: ScriptedOpenAI, make_model: Callable[..., ChatModel]
) -> None:
    scripted.script({"status": 429, "headers": {"retry-after": "60"}})
    model = make_model()
    started = asyncio.get_running_loop().time()
    with pytest.raises(ModelUnavailable, match="throttled"):
        await model.complete(MESSAGES, [], deadline=deadline_in(5))
    assert asyncio.get_running_loop().time() - started < 5
    assert len(scripted.requests) == 1
    await model.aclose()


async def test_server_errors_are_retried_a_bounded_number_of_times(
    scripted: ScriptedOpenAI, make_model: Callable[..., ChatModel]
) -> None:
    scripted.script({"status": 500}, {"status": 503}, {"text": "recovered"})
    model = make_model()
    assert (await model.complete(MESSAGES, [], deadline=deadline_in(20))).text == "recovered"
    scripted.script({"status": 500}, {"status": 500}, {"status": 500}, {"text": "never reached"})
    with pytest.raises(ModelUnavailable, match="server error"):
        await model.complete(MESSAGES, [], deadline=deadline_in(20))
    assert len(scripted.requests) == 6  # 3 + 3: first try plus LLM_MAX_RETRIES=2
    await model.aclose()


async def test_slow_endpoint_times_out_within_the_deadline(
    scripted: ScriptedOpenAI, make_model: Callable[..., ChatModel]
) -> None:
    scripted.script(*[{"delay_s": 3, "text": "too late"}] * 3)
    model = make_model(LLM_REQUEST_TIMEOUT_S=0.5)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ModelUnavailable, match="unreachable or slow"):
        await model.complete(MESSAGES, [], deadline=deadline_in(10))
    assert asyncio.get_running_loop().time() - started < 5
    await model.aclose()


async def test_content_filter_on_answer_and_on_prompt(
    scripted: ScriptedOpenAI, make_model: Callable[..., ChatModel]
) -> None:
    scripted.script({"text": "", "content_filter": "finish"}, {"content_filter": "prompt"})
    model = make_model()
    with pytest.raises(ContentFiltered):
        await model.complete(MESSAGES, [], deadline=deadline_in(10))
    with pytest.raises(ContentFiltered):
        await model.complete(MESSAGES, [], deadline=deadline_in(10))
    assert len(scripted.requests) == 2  # a filtered request is not retried
    await model.aclose()


async def test_breaker_opens_after_repeated_failures_and_recovers(
    scripted: ScriptedOpenAI, make_model: Callable[..., ChatModel]
) -> None:
    model = make_model(LLM_MAX_RETRIES=0, LLM_BREAKER_FAILURES=2, LLM_BREAKER_COOLDOWN_S=0.5)
    assert isinstance(model, OpenAIChatModel)
    scripted.script({"status": 500}, {"status": 500})
    for _ in range(2):
        with pytest.raises(ModelUnavailable):
            await model.complete(MESSAGES, [], deadline=deadline_in(10))
    # Open: the endpoint is not called at all.
    with pytest.raises(ModelUnavailable, match="circuit breaker"):
        await model.complete(MESSAGES, [], deadline=deadline_in(10))
    assert len(scripted.requests) == 2
    # After the cool-down one probe goes through; the endpoint has recovered.
    await asyncio.sleep(0.6)
    scripted.script({"text": "back again"})
    assert (await model.complete(MESSAGES, [], deadline=deadline_in(10))).text == "back again"
    assert not model.breaker.is_open
    await model.aclose()


async def test_azure_provider_uses_deployment_url_api_version_and_key(
    scripted: ScriptedOpenAI, make_model: Callable[..., ChatModel]
) -> None:
    scripted.script({"text": "hello from azure"})
    model = make_model(
        LLM_PROVIDER="azure",
        AZURE_OPENAI_ENDPOINT=scripted.base_url,
        AZURE_OPENAI_API_KEY="azure-key",
        AZURE_OPENAI_CHAT_DEPLOYMENT="support-gpt",
    )
    assert (await model.complete(MESSAGES, [], deadline=deadline_in(10))).text == "hello from azure"
    assert scripted.paths[0].startswith("/openai/deployments/support-gpt/chat/completions?api-version=")
    assert scripted.headers[0]["api-key"] == "azure-key"
    await model.aclose()


async def test_offline_provider_builds_no_model(make_settings: Callable[..., Settings]) -> None:
    assert build_chat_model(make_settings()) is None


async def test_a_real_cloud_endpoint_is_never_reached(make_settings: Callable[..., Settings]) -> None:
    """With the default OpenAI URL the call fails here (the loopback guard), and says so."""
    model = build_chat_model(make_settings(LLM_PROVIDER="openai", OPENAI_API_KEY="k", LLM_MAX_RETRIES=0))
    assert model is not None
    with pytest.raises(ModelUnavailable):
        await model.complete(MESSAGES, [], deadline=deadline_in(10))
    await model.aclose()
