"""Azure AI Content Safety at the HTTP boundary: the real `azure-ai-contentsafety` client
against a stand-in on loopback that speaks the REST API it calls (`text:analyze`, and
Prompt Shields' `text:shieldPrompt` through the same client), and the app with
CONTENT_SAFETY=azure pointed at it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.service import create_app
from bot.settings import Settings, load_settings
from dialogs import OfflineResources
from dialogs.safety import CALM
from providers.config import SafetyProvider
from providers.factory import build_content_safety
from providers.safety import Category, CombinedSafety
from providers.safety.azure import ANALYZE_API_VERSION, SHIELD_API_VERSION, AzureContentSafety
from shop.errors import ConfigurationError
from tests.handoff.conftest import say, texts
from tests.support.directline import start_conversation

KEY = "test-content-safety-key"


class ContentSafetyStandIn:
    """Answers like the service: a severity per category for `text:analyze` (Hate 4 for a
    text containing "HATEFUL", SelfHarm 6 for "SELFHARM", 0 otherwise), and an attack for
    `text:shieldPrompt` when the prompt contains "JAILBREAK". `fail_with` answers every
    request with a 500; `delay_s` waits before answering; a wrong key gets a 401."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, str], dict[str, Any]]] = []
        self.fail_with = False
        self.delay_s = 0.0
        self._server: TestServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/contentsafety/text:analyze", self._analyze)
        app.router.add_post("/contentsafety/text:shieldPrompt", self._shield)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def _take(self, request: web.Request) -> dict[str, Any]:
        body = await request.json()
        self.requests.append((request.path, dict(request.query), dict(request.headers), body))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.headers.get("Ocp-Apim-Subscription-Key") != KEY:
            raise web.HTTPUnauthorized(
                text='{"error": {"code": "401", "message": "Access denied: invalid subscription key."}}',
                content_type="application/json",
            )
        if self.fail_with:
            raise web.HTTPInternalServerError(
                text='{"error": {"code": "InternalServerError", "message": "scripted"}}',
                content_type="application/json",
            )
        return dict(body)

    async def _analyze(self, request: web.Request) -> web.Response:
        body = await self._take(request)
        text = str(body.get("text", ""))
        severities = {"Hate": 4 if "HATEFUL" in text else 0, "SelfHarm": 6 if "SELFHARM" in text else 0}
        categories = [
            {"category": name, "severity": severities.get(name, 0)}
            for name in ("Hate", "SelfHarm", "Sexual", "Violence")
        ]
        return web.json_response({"blocklistsMatch": [], "categoriesAnalysis": categories})

    async def _shield(self, request: web.Request) -> web.Response:
        body = await self._take(request)
        attack = "JAILBREAK" in str(body.get("userPrompt", ""))
        return web.json_response({"userPromptAnalysis": {"attackDetected": attack}, "documentsAnalysis": []})


@pytest.fixture
async def stand_in() -> AsyncIterator[ContentSafetyStandIn]:
    server = ContentSafetyStandIn()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def azure(stand_in: ContentSafetyStandIn) -> AsyncIterator[AzureContentSafety]:
    provider = AzureContentSafety.connect(stand_in.endpoint, KEY, timeout_s=1.0)
    yield provider
    await provider.aclose()


async def test_a_flagged_message_and_the_requests_the_sdk_sends(
    azure: AzureContentSafety, stand_in: ContentSafetyStandIn
) -> None:
    verdict = await azure.check("you are HATEFUL and this is a JAILBREAK", direction="input")
    assert verdict.checked and verdict.offensive and verdict.injection
    assert {(f.category, f.severity) for f in verdict.findings} == {
        (Category.HATE, 4),
        (Category.PROMPT_INJECTION, 6),
    }
    by_path = {path: (query, headers, body) for path, query, headers, body in stand_in.requests}
    query, headers, body = by_path["/contentsafety/text:analyze"]
    assert query == {"api-version": ANALYZE_API_VERSION} and headers["Ocp-Apim-Subscription-Key"] == KEY
    assert body == {"text": "you are HATEFUL and this is a JAILBREAK", "outputType": "FourSeverityLevels"}
    query, headers, body = by_path["/contentsafety/text:shieldPrompt"]
    assert query == {"api-version": SHIELD_API_VERSION} and headers["Ocp-Apim-Subscription-Key"] == KEY
    assert body == {"userPrompt": "you are HATEFUL and this is a JAILBREAK", "documents": []}


async def test_a_clean_message_and_an_answer(
    azure: AzureContentSafety, stand_in: ContentSafetyStandIn
) -> None:
    verdict = await azure.check("where is my parcel?", direction="input")
    assert verdict.checked and verdict.findings == ()
    stand_in.requests.clear()
    # An answer is analysed, not shielded (Prompt Shields reads what users send).
    answer = await azure.check("Sorry to hear that. SELFHARM", direction="output")
    assert [path for path, *_ in stand_in.requests] == ["/contentsafety/text:analyze"]
    assert answer.unfit_answer and answer.self_harm


@pytest.mark.parametrize("failure", ["error", "slow", "bad key"])
async def test_the_service_failing_lets_the_text_through_with_a_warning(
    failure: str, stand_in: ContentSafetyStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """Fails open: a support bot keeps helping while the safety service is down (the local
    rules still run beside it, as the second half shows)."""
    if failure == "error":
        stand_in.fail_with = True
    elif failure == "slow":
        stand_in.delay_s = 1.0
    provider = AzureContentSafety.connect(
        stand_in.endpoint, "wrong-key" if failure == "bad key" else KEY, timeout_s=0.3
    )
    combined = CombinedSafety([build_content_safety(_Local()), provider])
    try:
        with caplog.at_level(logging.WARNING, logger="providers.safety.azure"):
            alone = await provider.check("you are HATEFUL", direction="input")
            both = await combined.check("you stupid bot, HATEFUL", direction="input")
    finally:
        await combined.aclose()
    assert not alone.checked and alone.findings == ()
    assert "Azure AI Content Safety" in caplog.text and "let through" in caplog.text
    assert not both.checked and both.offensive  # the local rules found the insult
    assert [f.source for f in both.findings] == ["local: insult at you", "local: insult at the bot"]


class _Local:
    content_safety = SafetyProvider.LOCAL
    azure_content_safety_endpoint = ""
    azure_content_safety_key = ""


def test_the_factory_and_the_settings(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigurationError, match="AZURE_CONTENT_SAFETY_ENDPOINT is required"):
        load_settings(_env_file=None, CONTENT_SAFETY="azure", SEED_ON_START=False)
    with pytest.raises(ConfigurationError, match="AZURE_CONTENT_SAFETY_ENDPOINT"):
        load_settings(_env_file=None, AZURE_CONTENT_SAFETY_ENDPOINT="not-a-url", SEED_ON_START=False)
    assert build_content_safety(make_settings()).name == "local"
    assert build_content_safety(make_settings(CONTENT_SAFETY="off")).name == "off"


async def test_without_a_key_the_client_signs_in_with_entra_id(stand_in: ContentSafetyStandIn) -> None:
    from azure.identity.aio import DefaultAzureCredential

    provider = AzureContentSafety.connect("https://example.cognitiveservices.azure.com")
    try:
        assert isinstance(provider._credential, DefaultAzureCredential)
    finally:
        await provider.aclose()


async def test_the_app_answers_a_message_azure_flags_calmly(
    stand_in: ContentSafetyStandIn,
    make_settings: Callable[..., Settings],
    offline_resources: OfflineResources,
) -> None:
    settings = make_settings(
        CONTENT_SAFETY="azure", AZURE_CONTENT_SAFETY_ENDPOINT=stand_in.endpoint, AZURE_CONTENT_SAFETY_KEY=KEY
    )
    server = TestServer(create_app(settings, offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            conversation = await start_conversation(http, str(server.make_url("")).rstrip("/"))
            said = texts(await say(conversation, "people like you are HATEFUL"))
            assert said == CALM
            said = texts(await say(conversation, "where is my order?"))
            assert "email" in said
    finally:
        await server.close()
    prompts = [body.get("userPrompt") for path, _, _, body in stand_in.requests if "shield" in path]
    assert prompts == ["people like you are HATEFUL", "where is my order?"]
