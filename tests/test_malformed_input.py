"""Bodies that are valid JSON but not usable activities get a 400 with a sentence, never
a 500: found by fuzzing the endpoints (a number of thousands of digits, an activity with
no conversation, a field of the wrong type)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.directline import start_conversation

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
