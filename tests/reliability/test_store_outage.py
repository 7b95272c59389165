"""The order store goes away for a while and comes back: the app (STORE=cosmos, on the
local Cosmos DB server) says so plainly and recovers by itself.

The outage is the network's, not the server's (the server keeps its data in memory and
must not restart): a loopback proxy between app and server refuses connections, then
resets them. Readiness must report the store, a customer's message must get a clear
"temporarily unavailable, retry" answer (never a 500 or a stack trace), the app must keep
running with the customer's stream open, and it must serve again once the store is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest

from shop.store.base import Collection, Record
from shop.store.cosmos import CosmosStore
from tests.reliability.conftest import Apps, app_env
from tests.reliability.harness import StreamWatcher, client_session, is_bot_message
from tests.reliability.tcp_proxy import TcpProxy
from tests.support.cosmos import TEST_KEY, cosmos_server
from tests.support.directline import start_conversation

CUSTOMER = "evelyn_ito_7643"
EMAIL = "evelyn.ito2168@example.com"
ORDER = "#W6207110"


@pytest.fixture
async def cosmos_behind_proxy() -> AsyncIterator[TcpProxy]:
    """The Cosmos DB test server, reachable only through a proxy the test can cut."""
    proxy = TcpProxy()
    await proxy.start()
    with contextlib.ExitStack() as stack:
        # The server must advertise the proxy, or the SDK would go around it.
        server = cosmos_server(advertised_port=proxy.port)
        endpoint = await asyncio.to_thread(stack.enter_context, server)
        proxy.target = ("127.0.0.1", int(endpoint.rsplit(":", 1)[1]))
        try:
            yield proxy
        finally:
            await proxy.aclose()
            await asyncio.to_thread(stack.close)


async def seed_one_customer(endpoint: str, database: str, dataset_dir: Path) -> None:
    """Evelyn, her orders and the catalogue: what the conversation needs, in a fraction
    of a full import's time."""
    data = {c: json.loads((dataset_dir / f"{c.value}.json").read_text("utf-8")) for c in Collection}
    customer = data[Collection.CUSTOMERS][CUSTOMER]
    wanted = {
        Collection.CUSTOMERS: {CUSTOMER},
        Collection.ORDERS: set(customer["orders"]),
        Collection.PRODUCTS: set(data[Collection.PRODUCTS]),
    }
    store = await CosmosStore.open(endpoint, TEST_KEY, database, verify_tls=False)
    try:
        for collection, keys in wanted.items():
            records = [
                Record(key=key, seq=seq, doc=doc)
                for seq, (key, doc) in enumerate(data[collection].items())
                if key in keys
            ]
            await store.import_records(collection, records)
    finally:
        await store.aclose()


async def readiness(session: aiohttp.ClientSession, base_url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(f"{base_url}/readyz") as resp:
        return resp.status, await resp.json()


async def test_a_store_outage_is_reported_plainly_and_service_resumes_by_itself(
    apps: Apps, cosmos_behind_proxy: TcpProxy, dataset_dir: Path
) -> None:
    proxy = cosmos_behind_proxy
    endpoint = f"https://127.0.0.1:{proxy.port}"
    database = f"outage-{uuid.uuid4().hex[:8]}"
    await seed_one_customer(endpoint, database, dataset_dir)
    env = app_env(
        STORE="cosmos",
        COSMOS_ENDPOINT=endpoint,
        COSMOS_KEY=TEST_KEY,
        COSMOS_DATABASE=database,
        SEED_ON_START="false",
        DATASET_DIR=str(dataset_dir),
    )
    app = await apps.start(env)
    async with client_session() as session:
        assert await readiness(session, app.url) == (200, _ready(True))
        conversation = await start_conversation(session, app.url)
        async with StreamWatcher(conversation) as stream:
            for text in ("Hi, where is my order?", EMAIL):
                server_id, _ = await conversation.send(text)
                await stream.wait_for_turns([server_id], within_s=30)

            modes: tuple[Literal["refuse", "reset"], ...] = ("refuse", "reset")
            for mode in modes:
                await proxy.outage(mode)

                status, body = await readiness(session, app.url)
                assert (status, body) == (503, _ready(False)), mode

                message = {"type": "message", "text": f"what about {ORDER}?", "from": {"id": "webchat-user"}}
                async with session.post(
                    conversation.url("/activities"), json=message, headers=conversation.headers
                ) as resp:
                    refused = await resp.json()
                assert resp.status == 503, (mode, resp.status, refused)
                assert resp.headers.get("Retry-After"), "a client should be told when to retry"
                assert refused["error"]["code"] == "ServiceUnavailable"
                said = refused["error"]["message"]
                assert "temporarily unavailable" in said and "try again" in said, said

                await proxy.restore()
                status, body = await readiness(session, app.url)
                assert (status, body) == (200, _ready(True)), mode
                # The customer retries, on the stream that stayed open through the outage.
                server_id, _ = await conversation.send(f"what about {ORDER}?")
                await stream.wait_for_turns([server_id], within_s=30)
                answer = [
                    a["text"]
                    for a in stream.activities.values()
                    if is_bot_message(a) and a.get("replyToId") == server_id
                ]
                assert any(ORDER in text for text in answer), answer

    assert app.running, "the app crashed during the outage"
    assert app.error_lines() == [], app.log()


def _ready(store: bool) -> dict[str, Any]:
    return {
        "status": "ready" if store else "not ready",
        "checks": {"webchat_bundle": True, "store": store},
    }
