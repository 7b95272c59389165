"""A caller who asks for a person gets one: the agent's console shows the call like a
chat, the agent's messages are spoken on the call, and what the caller says reaches the
agent as text."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.handoff.agents import Agents
from bot.service import STORES, VOICE
from tests.handoff.conftest import AgentClient
from tests.voice.caller import ScriptedCaller


@pytest.mark.timeout(180)
async def test_a_caller_is_handed_to_an_agent_who_is_heard_on_the_call(
    dial: Callable[..., Awaitable[ScriptedCaller]],
    transcribe: Callable[[bytes], Awaitable[str]],
    voice_server: TestServer,
    add_agent: Callable[[TestServer, str], Any],
    agent_client: Callable[[str], AgentClient],
) -> None:
    await add_agent(voice_server, "alex")
    agent = agent_client(str(voice_server.make_url("")).rstrip("/"))
    assert await agent.sign_in("alex") == 200
    await Agents(voice_server.app[STORES].state).seen("alex")  # the console is open

    call = await dial("+15550100777")
    await call.first_words()  # the greeting starts; the caller talks over it
    await call.say("I want to talk to a real person please.")
    queued = await transcribe(bytes((await call.listen()).audio))
    assert "next" in queued or "line" in queued or "person" in queued, queued

    (conversation_id,) = voice_server.app[VOICE].calls
    entry = next(e for e in await agent.queue() if e["conversation_id"] == conversation_id)
    assert entry["status"] == "queued"
    status, _ = await agent.post(f"/conversations/{conversation_id}/claim")
    assert status == 200
    joined = await transcribe(bytes((await call.listen()).audio))
    assert "alex" in joined or "support" in joined, joined

    status, _ = await agent.post(
        f"/conversations/{conversation_id}/messages", {"text": "Hi, I'm Alex. How can I help?"}
    )
    assert status == 200
    spoken = await transcribe(bytes((await call.listen()).audio))
    assert "help" in spoken, spoken

    await call.say("My kettle arrived broken.")
    for _ in range(100):  # the caller's words reach the console as text
        _, record = await agent.get(f"/conversations/{conversation_id}")
        if record["log"][-1]["role"] == "customer":
            break
        await asyncio.sleep(0.1)
    assert record["log"][-1]["role"] == "customer" and "broken" in record["log"][-1]["text"], record["log"][
        -3:
    ]
    await call.hang_up()
