"""Bodies that are valid JSON but not usable activities get a 400 with a sentence, never
a 500: found by fuzzing the endpoints (a number of thousands of digits, an activity with
no conversation, a field of the wrong type, JSON the store cannot write)."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest

from tests.support.directline import answers, start_conversation

HUGE_NUMBER = b'{"type": "message", "text": "hi", "n": ' + b"1" * 5000 + b"}"
NOT_ACTIVITIES = [
    {
        "type": "message",
        "text": "hi",
        "channelId": "emulator",
        "serviceUrl": "http://127.0.0.1:9",
    },  # no conversation
    {
        "type": "message",
        "text": "hi",
        "conversation": {"id": "c"},
        "serviceUrl": "http://127.0.0.1:9",
    },  # no channel
    {"type": "message", "text": "hi", "conversation": {"id": "c"}, "channelId": "emulator"},  # no serviceUrl
    {
        "type": "message",
        "text": "hi",
        "conversation": {"id": "c"},
        "channelId": "emulator",
        "serviceUrl": "http://127.0.0.1:9",
        "membersAdded": [{"id": {"nested": True}}],
        "entities": "x",
    },
]


async def test_a_number_too_long_to_read_is_a_400(base_url: str, http: aiohttp.ClientSession) -> None:
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{base_url}/api/messages", data=HUGE_NUMBER, headers=headers) as resp:
        assert resp.status == 400 and "too large to read" in (await resp.json())["error"]["message"]
    conversation = await start_conversation(http, base_url)
    async with http.post(
        conversation.url("/activities"), data=HUGE_NUMBER, headers={**conversation.headers, **headers}
    ) as resp:
        assert resp.status == 400


@pytest.mark.parametrize("activity", NOT_ACTIVITIES)
async def test_an_activity_the_bot_cannot_answer_is_a_400(
    activity: dict[str, object], base_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{base_url}/api/messages", json=activity) as resp:
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"]["message"].startswith("the activity")


async def test_a_direct_line_activity_with_a_field_of_the_wrong_type_is_a_400(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    conversation = await start_conversation(http, base_url)
    bad = {"type": "message", "text": "hi", "from": {"id": "u", "role": "user"}, "attachments": "not a list"}
    async with http.post(conversation.url("/activities"), json=bad, headers=conversation.headers) as resp:
        assert resp.status == 400
    # The conversation goes on as before.
    sent, _ = await conversation.send("hello")
    assert sent


# Valid JSON that Python's parser reads but the store's JSON writer (orjson) refuses, with
# what the 400 says about it. Each was accepted and then failed where it was stored: a 500
# at the Direct Line and the Bot Connector endpoint, a crashed turn behind a 201 at
# /api/messages (the text reached the tokenizer).
UNSTORABLE = [
    pytest.param("value", b"18446744073709551616", "integer outside 64 bits", id="integer-past-64-bits"),
    pytest.param("text", b'"\\ud800"', "unpaired surrogate", id="unpaired-surrogate"),
    pytest.param("value", b"[" * 254 + b"]" * 254, "more than 254 levels deep", id="nesting-past-254"),
]


def with_raw_field(activity: dict[str, Any], name: str, raw_json: bytes) -> bytes:
    """`activity` as JSON text with the field `name` written as given (no Python value writes it)."""
    others = {key: value for key, value in activity.items() if key != name}
    return json.dumps(others).encode()[:-1] + f', "{name}": '.encode() + raw_json + b"}"


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def refused_with(resp: aiohttp.ClientResponse, words: str) -> None:
    assert resp.status == 400, await resp.text()
    message = (await resp.json())["error"]["message"]
    assert message.startswith("the request body cannot be kept") and words in message, message


@pytest.mark.parametrize(("name", "raw_json", "words"), UNSTORABLE)
async def test_json_the_store_cannot_write_is_a_400_at_api_messages(
    name: str,
    raw_json: bytes,
    words: str,
    base_url: str,
    http: aiohttp.ClientSession,
    channel_inbox: tuple[str, list[dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    service_url, received = channel_inbox
    activity = {
        "type": "message",
        "id": "m-1",
        "text": "is anyone there?",
        "channelId": "emulator",
        "serviceUrl": service_url,
        "from": {"id": "user-1", "role": "user"},
        "recipient": {"id": "bot", "role": "bot"},
        "conversation": {"id": "conv-1"},
    }
    headers = {"Content-Type": "application/json"}
    body = with_raw_field(activity, name, raw_json)
    async with http.post(f"{base_url}/api/messages", data=body, headers=headers) as resp:
        await refused_with(resp, words)
    # No turn ran for it; the same conversation's next message is answered.
    assert received == []
    async with http.post(f"{base_url}/api/messages", json=activity) as resp:
        assert resp.status == 201
    assert [r["replyToId"] for r in received if r["type"] == "message"] == ["m-1"]
    assert errors_logged(caplog) == []


@pytest.mark.parametrize(("name", "raw_json", "words"), UNSTORABLE)
async def test_json_the_store_cannot_write_is_a_400_at_the_direct_line(
    name: str,
    raw_json: bytes,
    words: str,
    base_url: str,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation = await start_conversation(http, base_url)
    headers = {**conversation.headers, "Content-Type": "application/json"}
    body = with_raw_field({"type": "message", "text": "hi"}, name, raw_json)
    async with http.post(conversation.url("/activities"), data=body, headers=headers) as resp:
        await refused_with(resp, words)
    # Nothing half-stored: the conversation goes on, its log numbered without a gap.
    server_id, _ = await conversation.send("hello again")
    await conversation.poll_until(answers(server_id))
    assert errors_logged(caplog) == []


@pytest.mark.parametrize(("name", "raw_json", "words"), UNSTORABLE)
async def test_json_the_store_cannot_write_is_a_400_at_the_bot_connector_endpoint(
    name: str,
    raw_json: bytes,
    words: str,
    base_url: str,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation = await start_conversation(http, base_url)
    url = f"{base_url}/v3/conversations/{conversation.conversation_id}/activities"
    note = {"type": "message", "text": "a proactive note", "from": {"id": "bot", "role": "bot"}}
    body = with_raw_field(note, name, raw_json)
    async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
        await refused_with(resp, words)
    async with http.post(url, json=note) as resp:
        assert resp.status == 200
    await conversation.poll_until(lambda a: a.get("text") == "a proactive note")
    assert errors_logged(caplog) == []


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
async def test_nan_and_infinity_are_not_json(
    constant: bytes, base_url: str, http: aiohttp.ClientSession
) -> None:
    """Python's parser reads them; the store would have written null in their place."""
    conversation = await start_conversation(http, base_url)
    body = with_raw_field({"type": "message", "text": "hi"}, "value", constant)
    headers = {**conversation.headers, "Content-Type": "application/json"}
    async with http.post(conversation.url("/activities"), data=body, headers=headers) as resp:
        assert resp.status == 400
        message = (await resp.json())["error"]["message"]
        assert message == f"the request body is not valid JSON: {constant.decode()} is not a JSON number"
    server_id, _ = await conversation.send("hello again")
    await conversation.poll_until(answers(server_id))
