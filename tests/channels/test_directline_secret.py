"""Direct Line with a secret, as in Azure: the secret mints tokens, a token can carry a customer's id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest

from bot.settings import Settings
from tests.support.directline import answers

SECRET = "shop-backend-secret-for-tests"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(DIRECT_LINE_SECRET=SECRET)


async def test_generating_a_token_needs_the_secret(http: aiohttp.ClientSession, base_url: str) -> None:
    url = f"{base_url}/v3/directline/tokens/generate"
    async with http.post(url) as resp:
        assert resp.status == 401
    async with http.post(url, headers={"Authorization": "Bearer wrong-secret"}) as resp:
        assert resp.status == 401
    async with http.post(url, headers={"Authorization": f"Bearer {SECRET}"}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["conversationId"] and body["token"] and body["expires_in"] == 1800
    assert SECRET not in body["token"]


async def test_a_signed_in_customers_id_is_bound_into_the_token(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    async with http.post(
        f"{base_url}/v3/directline/tokens/generate",
        headers={"Authorization": f"Bearer {SECRET}"},
        json={"user": {"id": "dl_customer_42", "name": "Ivan"}},
    ) as resp:
        token = (await resp.json())["token"]
    auth = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{base_url}/v3/directline/conversations", headers=auth) as resp:
        assert resp.status == 201
        started = await resp.json()
    conversation_url = f"{base_url}/v3/directline/conversations/{started['conversationId']}"
    auth = {"Authorization": f"Bearer {started['token']}"}
    # The page claims to be someone else; the channel uses the id the shop bound.
    activity = {"type": "message", "text": "hello", "from": {"id": "somebody-else"}}
    async with http.post(f"{conversation_url}/activities", json=activity, headers=auth) as resp:
        server_id = (await resp.json())["id"]
    async with http.get(f"{conversation_url}/activities", headers=auth) as resp:
        activities = (await resp.json())["activities"]
    echo = next(a for a in activities if a["id"] == server_id)
    assert echo["from"]["id"] == "dl_customer_42"


async def test_the_secret_starts_a_conversation_directly(http: aiohttp.ClientSession, base_url: str) -> None:
    async with http.post(
        f"{base_url}/v3/directline/conversations", headers={"Authorization": f"Bearer {SECRET}"}
    ) as resp:
        assert resp.status == 201
        started = await resp.json()
    auth = {"Authorization": f"Bearer {started['token']}"}
    url = f"{base_url}/v3/directline/conversations/{started['conversationId']}/activities"
    async with http.post(url, json={"type": "message", "text": "hi"}, headers=auth) as resp:
        server_id = (await resp.json())["id"]
    for _ in range(100):
        async with http.get(url, headers=auth) as resp:
            if any(answers(server_id)(a) for a in (await resp.json())["activities"]):
                return
        await asyncio.sleep(0.05)
    pytest.fail("the conversation started with the secret was not answered")


async def test_with_a_secret_even_loopback_clients_need_it(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    async with http.post(f"{base_url}/v3/directline/conversations") as resp:
        assert resp.status == 401


@pytest.mark.parametrize("user", [{"id": ""}, {"id": 7}, "dl_x", {"id": "x" * 200}])
async def test_a_bad_user_binding_is_400(http: aiohttp.ClientSession, base_url: str, user: object) -> None:
    async with http.post(
        f"{base_url}/v3/directline/tokens/generate",
        headers={"Authorization": f"Bearer {SECRET}"},
        json={"user": user},
    ) as resp:
        assert resp.status == 400


async def test_a_user_id_that_is_not_valid_unicode_is_400(http: aiohttp.ClientSession, base_url: str) -> None:
    """An unpaired surrogate (JSON's "\\ud800") was bound into a token that then failed,
    with a 500, to start its conversation (found by fuzzing)."""
    url = f"{base_url}/v3/directline/tokens/generate"
    secret = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
    async with http.post(url, data=b'{"user": {"id": "dl_\\ud800"}}', headers=secret) as resp:
        assert resp.status == 400
        assert "unpaired surrogate" in (await resp.json())["error"]["message"]
    async with http.post(url, json={"user": {"id": "dl_customer_42"}}, headers=secret) as resp:
        assert resp.status == 200
        token = (await resp.json())["token"]
    async with http.post(
        f"{base_url}/v3/directline/conversations", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 201
