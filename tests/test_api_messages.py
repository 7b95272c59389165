"""`/api/messages`: JWT-validated when MicrosoftAppId is set, anonymous for local use otherwise."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bot.service import create_app
from bot.settings import Settings
from dialogs import OfflineResources

APP_ID = str(uuid.UUID(int=0x1234))
SERVICE_URL = "https://smba.example.invalid/teams/"
ISSUER = "https://api.botframework.com"


class SigningAuthority:
    """Plays the Bot Framework token service: an OpenID metadata document and its signing keys.

    It runs in a thread because the SDK fetches the keys with a blocking HTTP client.
    """

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "aftercare-test-key"
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "endorsements": ["msteams", "directline", "webchat"]})
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                base = f"http://127.0.0.1:{authority.port}"
                documents = {
                    "/openid": {"issuer": ISSUER, "jwks_uri": f"{base}/keys"},
                    "/keys": {"keys": [jwk]},
                }
                body = json.dumps(documents.get(self.path, {})).encode()
                self.send_response(200 if self.path in documents else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def metadata_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/openid"

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": APP_ID,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "serviceurl": SERVICE_URL,
        }
        claims.update(overrides)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture
def authority() -> Iterator[SigningAuthority]:
    service = SigningAuthority()
    service.thread.start()
    yield service
    service.server.shutdown()
    service.server.server_close()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], authority: SigningAuthority) -> Settings:
    return make_settings(
        MicrosoftAppId=APP_ID,
        MicrosoftAppPassword="not-used-here",
        BOT_OPENID_METADATA_URL=authority.metadata_url,
    )


def event_activity() -> dict[str, Any]:
    # An event the bot does not answer, so no reply needs an Azure AD token to go out.
    return {
        "type": "event",
        "name": "aftercare/ping",
        "id": "evt-1",
        "channelId": "msteams",
        "serviceUrl": SERVICE_URL,
        "from": {"id": "29:user", "role": "user"},
        "recipient": {"id": f"28:{APP_ID}", "role": "bot"},
        "conversation": {"id": "a:conversation"},
    }


async def post(http: aiohttp.ClientSession, base_url: str, headers: dict[str, str]) -> int:
    async with http.post(f"{base_url}/api/messages", json=event_activity(), headers=headers) as resp:
        if resp.status >= 400:
            assert "Traceback" not in await resp.text()
        return resp.status


async def test_missing_authorization_is_401(http: aiohttp.ClientSession, base_url: str) -> None:
    assert await post(http, base_url, {}) == 401


async def test_garbage_token_is_401(http: aiohttp.ClientSession, base_url: str) -> None:
    assert await post(http, base_url, {"Authorization": "Bearer garbage"}) == 401
    assert await post(http, base_url, {"Authorization": "garbage"}) == 401


async def test_token_signed_with_another_key_is_401(
    http: aiohttp.ClientSession, base_url: str, authority: SigningAuthority
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    forged = jwt.encode(
        {"iss": ISSUER, "aud": APP_ID, "iat": now, "exp": now + 600},
        other,
        algorithm="RS256",
        headers={"kid": authority.kid},
    )
    assert await post(http, base_url, {"Authorization": f"Bearer {forged}"}) == 401


async def test_wrong_audience_or_expired_token_is_401(
    http: aiohttp.ClientSession, base_url: str, authority: SigningAuthority
) -> None:
    wrong_audience = authority.token(aud=str(uuid.uuid4()))
    assert await post(http, base_url, {"Authorization": f"Bearer {wrong_audience}"}) == 401
    long_ago = int(time.time()) - 7200
    expired = authority.token(iat=long_ago, nbf=long_ago, exp=long_ago + 600)
    assert await post(http, base_url, {"Authorization": f"Bearer {expired}"}) == 401
    # A token issued for another channel endpoint cannot be replayed against this activity.
    replayed = authority.token(serviceurl="https://elsewhere.example.invalid/")
    assert await post(http, base_url, {"Authorization": f"Bearer {replayed}"}) == 401


async def test_valid_bot_framework_token_is_accepted(
    http: aiohttp.ClientSession, base_url: str, authority: SigningAuthority
) -> None:
    assert await post(http, base_url, {"Authorization": f"Bearer {authority.token()}"}) == 201


async def test_anonymous_local_mode_answers_through_the_service_url(
    http: aiohttp.ClientSession,
    make_settings: Callable[..., Settings],
    offline_resources: OfflineResources,
    channel_inbox: tuple[str, list[dict[str, Any]]],
) -> None:
    """With no MicrosoftAppId, a channel may post without a token and gets the bot's reply."""
    service_url, received = channel_inbox
    bot_server = TestServer(
        create_app(make_settings(), offline_resources=offline_resources), host="127.0.0.1"
    )
    await bot_server.start_server()
    try:
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
        async with http.post(bot_server.make_url("/api/messages"), json=activity) as resp:
            assert resp.status == 201
        replies = [r for r in received if r["type"] == "message"]
        assert len(replies) == 1 and replies[0]["text"]
        assert replies[0]["replyToId"] == "m-1"
        assert replies[0]["channelData"]["aftercare"]["engine"] == "offline"
    finally:
        await bot_server.close()


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [(b"{oops", "application/json", 400), (b"{}", "application/json", 400), (b"hello", "text/plain", 415)],
)
async def test_bad_requests_are_4xx(
    http: aiohttp.ClientSession,
    make_settings: Callable[..., Settings],
    body: bytes,
    content_type: str,
    status: int,
) -> None:
    bot_server = TestServer(create_app(make_settings()), host="127.0.0.1")
    await bot_server.start_server()
    try:
        async with http.post(
            bot_server.make_url("/api/messages"), data=body, headers={"Content-Type": content_type}
        ) as resp:
            assert resp.status == status
    finally:
        await bot_server.close()
