"""Direct Line 3.0 as Web Chat uses it: conversations, watermarks, streams, tokens, bad input."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.channels.tokens import TokenSigner
from bot.service import DIRECTLINE
from bot.support_bot import WELCOME
from tests.support.directline import answers, bot_replies, start_conversation
from tests.support.raw_http import raw_request


def is_welcome(activity: dict[str, Any]) -> bool:
    return activity.get("text") == WELCOME


async def next_frame(ws: aiohttp.ClientWebSocketResponse, within_s: float = 10.0) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(ws.receive(), within_s)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        if message.data:  # Azure may send empty keep-alive frames; Web Chat ignores them
            return dict(json.loads(message.data))


async def frames_until(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    """Reads frames until `count` logged activities have arrived; returns them (typing
    indicators, which are live only and carry no watermark of their own, are skipped)."""
    activities: list[dict[str, Any]] = []
    while len(activities) < count:
        frame = await next_frame(ws)
        if all(a["type"] == "typing" for a in frame["activities"]):
            continue
        assert frame["watermark"] == frame["activities"][-1]["id"].rsplit("|", 1)[1].lstrip("0") or "0"
        activities.extend(frame["activities"])
    return activities


async def test_start_answers_201_with_everything_web_chat_needs(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    conv = await start_conversation(http, base_url)
    assert conv.conversation_id
    assert conv.token
    assert (
        conv.stream_url.startswith("ws://")
        and f"/conversations/{conv.conversation_id}/stream?t=" in conv.stream_url
    )
    welcome = await conv.poll_until(is_welcome)
    assert welcome[0]["from"]["role"] == "bot"
    assert welcome[0]["id"] and welcome[0]["timestamp"]


async def test_message_is_echoed_with_server_id_then_answered(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    conv = await start_conversation(http, base_url)
    await conv.poll_until(is_welcome)
    server_id, client_id = await conv.send("Where is my parcel?")
    activities = await conv.poll_until(answers(server_id))

    echo = next(a for a in activities if a["id"] == server_id)
    assert echo["channelData"]["clientActivityID"] == client_id
    assert echo["from"]["role"] == "user" and echo["timestamp"]
    reply = bot_replies(activities)[-1]
    assert reply["replyToId"] == server_id
    assert "email" in reply["text"]  # the bot asks who the customer is before any order talk
    assert reply["from"]["role"] == "bot" and reply["id"] and reply["timestamp"]


async def test_watermark_returns_only_newer_activities(http: aiohttp.ClientSession, base_url: str) -> None:
    conv = await start_conversation(http, base_url)
    first = await conv.poll_until(is_welcome)
    mark = conv.watermark
    server_id, _ = await conv.send("two")
    later = await conv.poll_until(answers(server_id))
    assert not {a["id"] for a in first} & {a["id"] for a in later}
    assert int(conv.watermark or -1) > int(mark or -1)
    # Asking again from the newest watermark returns nothing new.
    assert await conv.poll() == []
    # Asking from an old watermark replays the same activities, in the same order.
    conv.watermark = mark
    assert [a["id"] for a in await conv.poll()] == [a["id"] for a in later]


async def test_websocket_replays_backlog_then_pushes_each_activity(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    conv = await start_conversation(http, base_url)
    await conv.poll_until(is_welcome)  # the welcome exists before the socket opens
    async with http.ws_connect(conv.stream_url) as ws:
        backlog = await next_frame(ws)
        assert any(is_welcome(a) for a in backlog["activities"])
        server_id, _ = await conv.send("hello over the socket")
        pushed = await frames_until(ws, 2)
    assert pushed[0]["id"] == server_id
    assert pushed[1]["replyToId"] == server_id


async def test_reconnect_after_dropped_socket_loses_and_duplicates_nothing(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    conv = await start_conversation(http, base_url)
    await conv.poll_until(is_welcome)
    received: list[dict[str, Any]] = []
    async with http.ws_connect(conv.stream_url) as ws:
        frame = await next_frame(ws)
        received.extend(frame["activities"])
        watermark = frame["watermark"]
    # Socket dropped. The customer's messages sent meanwhile (and the bot's answers) wait in the log.
    sent = [(await conv.send(f"message {n}"))[0] for n in range(3)]
    await conv.poll_until(answers(sent[-1]))

    async with http.get(conv.url(f"?watermark={watermark}"), headers=conv.headers) as resp:
        assert resp.status == 200
        again = await resp.json()
    assert again["conversationId"] == conv.conversation_id
    assert again["token"] and f"watermark={watermark}" in again["streamUrl"]
    async with http.ws_connect(again["streamUrl"]) as ws:
        received.extend(await frames_until(ws, 6))
        # Nothing more is pending: a new message arrives next, not a duplicate.
        server_id, _ = await conv.send("after reconnect")
        received.extend(await frames_until(ws, 2))

    ids = [a["id"] for a in received]
    assert len(ids) == len(set(ids)), "an activity was delivered twice"
    async with http.get(conv.url("/activities"), headers=conv.headers) as resp:
        everything = [a["id"] for a in (await resp.json())["activities"]]
    assert ids == everything, "the stream lost or reordered activities"
    assert server_id in ids


async def test_polling_mode_sees_the_same_conversation(http: aiohttp.ClientSession, base_url: str) -> None:
    conv = await start_conversation(http, base_url)
    await conv.poll_until(is_welcome)
    # Questions with one answer each (nonsense would, the third time, bring a person in).
    for question in ("what is your return policy?", "do you ship abroad?", "how long is the warranty?"):
        server_id, _ = await conv.send(question)
        await conv.poll_until(answers(server_id))
    # The welcome, then per message its echo and the answer; typing indicators are not
    # queued for polling clients (as in Azure's Direct Line).
    assert len(conv.seen_ids) == len(set(conv.seen_ids)) == 7


async def test_typing_indicator_is_live_only(http: aiohttp.ClientSession, base_url: str) -> None:
    """Web Chat shows "typing..." while the bot works; a client that was not connected
    then (polling, or reconnecting later) gets the answer without a stale indicator."""
    conv = await start_conversation(http, base_url)
    await conv.poll_until(is_welcome)
    async with http.ws_connect(conv.stream_url) as ws:
        watermark = (await next_frame(ws))["watermark"]
        server_id, _ = await conv.send("hello")
        live: list[dict[str, Any]] = []
        while not any(a.get("replyToId") == server_id and a["type"] == "message" for a in live):
            frame = await next_frame(ws)
            live.extend(frame["activities"])
            if frame["activities"][0]["type"] == "typing":
                # It leaves the client's watermark where its last logged activity put it.
                assert frame["watermark"] == watermark
            watermark = frame["watermark"]
    types = [a["type"] for a in live if a["id"] != server_id]
    assert types == ["typing", "message"]
    typing_indicator = live[[a["type"] for a in live].index("typing")]
    assert typing_indicator["replyToId"] == server_id and typing_indicator["from"]["role"] == "bot"
    logged = await conv.poll()
    assert [a["id"] for a in logged] == [a["id"] for a in live if a["type"] == "message"]  # echo, answer
    async with http.ws_connect(conv.stream_url.split("&")[0] + "&watermark=0") as ws:
        replayed = await next_frame(ws)
    assert [a["type"] for a in replayed["activities"]] == ["message", "message"]


async def test_token_refresh_gives_a_working_token(http: aiohttp.ClientSession, base_url: str) -> None:
    conv = await start_conversation(http, base_url)
    async with http.post(f"{base_url}/v3/directline/tokens/refresh", headers=conv.headers) as resp:
        assert resp.status == 200
        refreshed = await resp.json()
    assert refreshed["conversationId"] == conv.conversation_id and refreshed["token"] != conv.token
    conv.token = refreshed["token"]
    await conv.poll_until(is_welcome)


# ----- refusals -----------------------------------------------------------------------


async def test_missing_or_garbled_token_is_401(http: aiohttp.ClientSession, base_url: str) -> None:
    conv = await start_conversation(http, base_url)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        async with http.get(conv.url("/activities"), headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "Unauthorized"
        async with http.post(conv.url("/activities"), json={"type": "message"}, headers=headers) as resp:
            assert resp.status == 401


@pytest.mark.parametrize("value", [b"Bearer \x80", b"Bearer \xff\xfe", b"\xe9t\xe9"])
async def test_an_authorization_header_that_is_not_ascii_is_401(
    value: bytes, http: aiohttp.ClientSession, base_url: str, server: TestServer
) -> None:
    """Bytes that are not UTF-8 reach the app as surrogates, which checking a token could
    not encode: they were a 500 (found by fuzzing)."""
    conv = await start_conversation(http, base_url)
    path = conv.url("/activities").removeprefix(base_url).encode()
    for method, target in [
        (b"POST", b"/v3/directline/tokens/refresh"),
        (b"POST", b"/v3/directline/conversations"),
        (b"GET", path),
    ]:
        resp = await raw_request(server.port, method, target, [(b"Authorization", value)])
        assert resp.status == 401, resp
        assert resp.json()["error"]["message"].startswith("the Authorization header must be plain ASCII")
    # The real token still works.
    server_id, _ = await conv.send("still there?")
    await conv.poll_until(answers(server_id))


async def test_stream_with_bad_token_is_refused_before_upgrade(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    conv = await start_conversation(http, base_url)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(conv.stream_url.split("?")[0] + "?t=garbage")
    assert refused.value.status == 401


async def test_token_for_another_conversation_is_403(http: aiohttp.ClientSession, base_url: str) -> None:
    mine = await start_conversation(http, base_url)
    theirs = await start_conversation(http, base_url)
    await theirs.send("my private order question")
    foreign = {"Authorization": f"Bearer {mine.token}"}
    async with http.get(theirs.url("/activities"), headers=foreign) as resp:
        assert resp.status == 403
        assert "private" not in await resp.text()
    async with http.post(
        theirs.url("/activities"), json={"type": "message", "text": "x"}, headers=foreign
    ) as resp:
        assert resp.status == 403
    async with http.get(theirs.url(), headers=foreign) as resp:
        assert resp.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(theirs.stream_url.split("?")[0] + f"?t={mine.token}")
    assert refused.value.status == 403


async def test_expired_token_is_403(http: aiohttp.ClientSession, base_url: str, server: TestServer) -> None:
    conv = await start_conversation(http, base_url)
    service = server.app[DIRECTLINE]
    # A token minted an hour ago by the same signer, with the app's 30-minute lifetime.
    past = TokenSigner("", service.signer.ttl_s, clock=lambda: time.time() - 3600)
    past._key = service.signer._key
    expired = past.issue(conv.conversation_id, "dl_someone")
    async with http.get(conv.url("/activities"), headers={"Authorization": f"Bearer {expired}"}) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "TokenExpired"
    async with http.post(
        f"{base_url}/v3/directline/tokens/refresh", headers={"Authorization": f"Bearer {expired}"}
    ) as resp:
        assert resp.status == 403


async def test_unknown_conversation_is_404(http: aiohttp.ClientSession, base_url: str) -> None:
    # A valid token for a conversation that was never started (or has ended).
    async with http.post(f"{base_url}/api/directline/token") as resp:
        grant = await resp.json()
    headers = {"Authorization": f"Bearer {grant['token']}"}
    url = f"{base_url}/v3/directline/conversations/{grant['conversationId']}"
    async with http.get(url + "/activities", headers=headers) as resp:
        assert resp.status == 404
    async with http.post(
        url + "/activities", json={"type": "message", "text": "hi"}, headers=headers
    ) as resp:
        assert resp.status == 404
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 404


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b"", "application/json", 400),
        (b'{"text": "no type"}', "application/json", 400),
        (b'{"type": "message", "text": 42}', "application/json", 400),
        (b"\xff\xfe\xfa", "application/json", 400),
        (b'{"type": "message", "text": "' + b"x" * (300 * 1024) + b'"}', "application/json", 413),
    ],
)
async def test_bad_bodies_get_4xx_never_500(
    http: aiohttp.ClientSession, base_url: str, body: bytes, content_type: str, status: int
) -> None:
    conv = await start_conversation(http, base_url)
    headers = {**conv.headers, "Content-Type": content_type}
    async with http.post(conv.url("/activities"), data=body, headers=headers) as resp:
        assert resp.status == status
        assert "error" in await resp.json()
    # Nothing was lost: the conversation still works.
    server_id, _ = await conv.send("still there?")
    await conv.poll_until(answers(server_id))


async def test_oversized_chunked_body_is_413(http: aiohttp.ClientSession, base_url: str) -> None:
    conv = await start_conversation(http, base_url)

    async def chunks() -> Any:
        for _ in range(300):
            yield b"x" * 1024

    async with http.post(conv.url("/activities"), data=chunks(), headers=conv.headers) as resp:
        assert resp.status == 413


async def test_bad_watermark_is_400(http: aiohttp.ClientSession, base_url: str) -> None:
    conv = await start_conversation(http, base_url)
    async with http.get(conv.url("/activities?watermark=abc"), headers=conv.headers) as resp:
        assert resp.status == 400


async def test_connector_endpoint_refuses_unknown_conversation(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    async with http.post(f"{base_url}/v3/conversations/nope/activities", json={"type": "message"}) as resp:
        assert resp.status == 404
