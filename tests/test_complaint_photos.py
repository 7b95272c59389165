"""A picture a customer attaches in Teams reaches the complaint that asked for it, and
the agent's case says where it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from botbuilder.schema import Attachment

from bot.service import STORES, create_app
from bot.settings import Settings
from bot.support_bot import photos_in
from dialogs import OfflineResources


def test_only_pictures_count_and_inline_bytes_stay_out() -> None:
    attachments = [
        Attachment(content_type="text/html", content="<p>hi</p>"),
        Attachment(
            content_type="image/png", content_url="https://teams.example/files/crack.png", name="crack.png"
        ),
        Attachment(content_type="image/jpeg", content_url="data:image/jpeg;base64,AAAA", name="box.jpg"),
        Attachment(content_type="image/jpeg", content_url="data:image/jpeg;base64,BBBB"),
    ]
    assert photos_in(attachments) == ["https://teams.example/files/crack.png", "box.jpg", "picture 4"]
    assert photos_in(None) == []


async def test_a_photo_sent_in_teams_answers_the_complaints_question(
    http: aiohttp.ClientSession,
    make_settings: Callable[..., Settings],
    offline_resources: OfflineResources,
    channel_inbox: tuple[str, list[dict[str, Any]]],
) -> None:
    service_url, received = channel_inbox
    server = TestServer(create_app(make_settings(), offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()

    async def say(number: int, text: str = "", attachments: list[dict[str, Any]] | None = None) -> str:
        activity = {
            "type": "message",
            "id": f"m-{number}",
            "text": text,
            "attachments": attachments or [],
            "channelId": "msteams",
            "serviceUrl": service_url,
            "from": {"id": "user-1", "role": "user"},
            "recipient": {"id": "bot", "role": "bot"},
            "conversation": {"id": "teams-photo-1"},
        }
        before = len(received)
        async with http.post(server.make_url("/api/messages"), json=activity) as resp:
            assert resp.status in (200, 201)
        return "\n".join(r.get("text") or "" for r in received[before:] if r["type"] == "message")

    try:
        await say(1, "raj.anderson6756@example.com")
        assert "photo" in await say(2, "the thermostat arrived with a smashed screen")
        picture = {"contentType": "image/png", "contentUrl": "https://teams.example/files/screen.png"}
        said = await say(3, "", [picture])
        assert "replacement" in said and "refund" in said
        stored = await server.app[STORES].state.read_state("msteams/conversations/teams-photo-1")
        assert stored is not None
        assert stored.doc["dialog"]["flow"]["slots"]["photos"] == ["https://teams.example/files/screen.png"]
    finally:
        await server.close()
