"""The SDK patches change no behaviour: the retry policy is the one msrest defines, and
replies are sent exactly as msrest sends them, only on threads of their own."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botbuilder.core import ConversationState, MemoryStorage, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from msrest.exceptions import ClientRequestError
from msrest.universal_http.requests import ClientRetryPolicy

from bot import sdk_patches
from bot.sdk_patches import apply_sdk_patches, release_connector_threads, use_connector_threads


def test_retry_policy_is_unchanged_by_the_patch() -> None:
    # msrest's definition, written out: retry every status from 0 to 998 except the safe ones.
    safe = [i for i in range(500) if i != 408] + [501, 505]
    expected = [i for i in range(999) if i not in safe]
    apply_sdk_patches()
    apply_sdk_patches()  # idempotent
    policy = ClientRetryPolicy().policy
    assert isinstance(ClientRetryPolicy.safe_codes, frozenset)
    assert list(policy.status_forcelist) == expected
    assert (
        408 in policy.status_forcelist
        and 503 in policy.status_forcelist
        and 404 not in policy.status_forcelist
    )
    assert (policy.total, policy.connect, policy.read, policy.backoff_factor) == (3, 3, 3, 0.8)


async def test_a_reply_goes_out_while_every_default_executor_thread_is_busy() -> None:
    """The deadlock in miniature: the loop's default executor is fully taken (in the app,
    by replies waiting on the app itself); the bot's reply must still reach the channel."""
    apply_sdk_patches()
    received: list[dict[str, Any]] = []

    async def channel(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"id": "reply-1"})

    app = web.Application()
    app.router.add_post("/v3/conversations/{conversation_id}/activities", channel)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    own_threads = ThreadPoolExecutor(max_workers=2)
    use_connector_threads(loop, own_threads)  # as the app does at start-up
    released = threading.Event()
    busy = loop.run_in_executor(None, released.wait, 30)
    try:
        client = ConnectorClient(MicrosoftAppCredentials("", ""), base_url=str(server.make_url("")))
        sent = await asyncio.wait_for(
            client.conversations.send_to_conversation("conv-1", Activity(type="message", text="hello")), 10
        )
        assert sent.id == "reply-1"
        assert [(a["type"], a["text"]) for a in received] == [("message", "hello")]
    finally:
        released.set()
        await busy
        release_connector_threads(loop)
        own_threads.shutdown()
        await server.close()


def test_a_patch_is_left_out_for_a_release_it_was_not_written_for(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    releases = {"msrest": "0.7.2", "botbuilder-core": "4.17.1"}
    monkeypatch.setattr(sdk_patches, "version", releases.__getitem__)
    monkeypatch.setattr(ClientRetryPolicy, "safe_codes", list(range(500)))
    with caplog.at_level(logging.WARNING, logger="bot.sdk_patches"):
        applied = sdk_patches.apply_sdk_patches()
    assert applied == ["botbuilder state hash"]
    assert isinstance(ClientRetryPolicy.safe_codes, list)  # msrest left as it is
    assert "msrest 0.7.2 is installed, but its patch was written for 0.7.1" in caplog.text


async def test_a_failed_request_still_raises_msrests_own_error() -> None:
    apply_sdk_patches()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nothing listens once the socket is closed
    client = ConnectorClient(MicrosoftAppCredentials("", ""), base_url=f"http://127.0.0.1:{closed_port}")
    client.config.retry_policy.retries = 0
    with pytest.raises(ClientRequestError):
        await client.conversations.send_to_conversation("conv-1", Activity(type="message", text="hello"))


class CountingStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def write(self, changes: dict[str, Any]) -> None:
        self.writes += 1
        await super().write(changes)


def _turn_context() -> TurnContext:
    activity = Activity(
        type="message",
        channel_id="directline",
        conversation=ConversationAccount(id="conversation-1"),
        from_property=ChannelAccount(id="customer"),
        recipient=ChannelAccount(id="bot"),
    )
    return TurnContext(TestAdapter(), activity)


@pytest.mark.parametrize("kind", ["plain JSON", "holding an object"])
async def test_state_is_saved_exactly_when_a_turn_changed_it(kind: str) -> None:
    """The patched change test writes a changed state and skips an unchanged one, for
    plain JSON (the fast path) and for state JSON cannot hold (jsonpickle, as before)."""
    apply_sdk_patches()
    storage = CountingStorage()
    state = ConversationState(storage)
    context = _turn_context()
    await state.load(context)
    cached = state.get_cached_state(context).state
    cached["dialog"] = {"turn": 1, "transcript": [{"role": "user", "text": "héllo"}]}
    if kind == "holding an object":
        cached["extra"] = SimpleNamespace(counter=1)
    await state.save_changes(context)
    assert storage.writes == 1
    fast_path = state.get_cached_state(context).hash.startswith("json:")
    assert fast_path == (kind == "plain JSON")
    await state.save_changes(context)  # nothing changed since
    assert storage.writes == 1
    if kind == "holding an object":
        cached["extra"].counter = 2  # a change deep inside the object is still seen
    else:
        cached["dialog"]["transcript"].append({"role": "bot", "text": "hi"})
    await state.save_changes(context)
    assert storage.writes == 2
