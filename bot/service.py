"""`create_app(settings)`: builds the whole service; nothing lives at module level."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from botbuilder.core import ConversationState
from botbuilder.schema import Activity

from bot.adapter import AftercareAdapter, bot_framework_authentication
from bot.channels.call_tickets import CallTickets, stored_ticket_key
from bot.channels.calls import CallWebhooks
from bot.channels.connector import ConnectorEndpoint
from bot.channels.directline import BotDelivery, DirectLineService, TurnRunner
from bot.channels.http import MAX_BODY_BYTES, deferred_routes, parse_activity, read_json_object
from bot.channels.tokens import TokenSigner
from bot.channels.voice import VoiceChannel
from bot.channels.webchat import WebChatPage
from bot.errors import BadRequest, Unauthorized
from bot.handoff.agents import Agents
from bot.handoff.console import AgentConsole
from bot.handoff.delivery import ChannelDelivery
from bot.handoff.desk import HandoffDesk, PacketBuilder
from bot.handoff.packet import build_packet
from bot.handoff.records import Packet, Trigger
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.http_errors import error_middleware
from bot.http_security import security_headers, webchat_policy
from bot.rate_limits import RateLimits
from bot.redaction import redact_activity
from bot.retention import conversation_retention, purging
from bot.sdk_patches import (
    CONNECTOR_THREADS,
    apply_sdk_patches,
    release_connector_threads,
    use_connector_threads,
)
from bot.settings import Settings
from bot.state_storage import BotFrameworkStorage
from bot.support_bot import SupportBot
from bot.telemetry import MetricsEndpoint
from dialogs import OfflineResources, build_offline_engine
from dialogs.catalog import ProductIndex
from dialogs.engine import SupportEngine
from dialogs.gpt import GptDialog, GptPrompts
from dialogs.safety import SafetyGuard
from dialogs.suggestions import Recommender
from dialogs.turn import DialogEngine, DialogState
from providers.embeddings import Embeddings
from providers.factory import (
    build_chat_model,
    build_content_safety,
    build_embeddings,
    build_sentiment,
    build_speech,
)
from providers.llm import ChatModel
from providers.speech import SpeechToText, TextToSpeech, Vocabulary
from providers.speech.stack import SpeechStack
from shop.errors import AftercareError
from shop.retail import RetailService
from shop.store import Stores, open_stores, seed_if_empty
from shop.store.base import Collection

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
ADAPTER = web.AppKey("adapter", AftercareAdapter)
BOT = web.AppKey("bot", SupportBot)
STORES = web.AppKey("stores", Stores)
OFFLINE_RESOURCES = web.AppKey("offline_resources", OfflineResources)
DIRECTLINE = web.AppKey("directline", DirectLineService)
WEBCHAT = web.AppKey("webchat", WebChatPage)
CONNECTOR = web.AppKey("connector", ConnectorEndpoint)
HANDOFF = web.AppKey("handoff", HandoffService)
LIMITS = web.AppKey("limits", RateLimits)
AGENT_CONSOLE = web.AppKey("agent_console", AgentConsole)
PACKETS: web.AppKey[PacketBuilder] = web.AppKey("packets")
OWN_EMBEDDINGS = web.AppKey("own_embeddings", Embeddings)
# Phone calls: the webhooks that answer them, and azure-core options for the Call
# Automation client, set before start-up (the tests' CA bundle for a local stand-in of ACS).
CALL_WEBHOOKS = web.AppKey("call_webhooks", CallWebhooks)
CALL_CLIENT_OPTIONS: web.AppKey[dict[str, Any]] = web.AppKey("call_client_options")
VOICE = web.AppKey("voice", VoiceChannel)
SPEECH = web.AppKey("speech", SpeechStack)
# The tickets that open /api/voice for calls ACS answered (set when ACS is configured).
CALL_TICKETS = web.AppKey("call_tickets", CallTickets)

BOT_NAME = "Aftercare"
SIGNING_KEY_DOC = "dl/signing-key"
# How often the product index looks for catalogue changes (new products, stock).
CATALOGUE_REFRESH_S = 600


class MessagesEndpoint:
    """`POST /api/messages`: activities from Azure Bot Service channels (Teams, Direct Line ...)."""

    def __init__(self, adapter: AftercareAdapter) -> None:
        self._adapter = adapter

    async def handle(self, request: web.Request) -> web.Response:
        if "application/json" not in request.headers.get("Content-Type", ""):
            raise web.HTTPUnsupportedMediaType(text="activities must be sent as application/json")
        body = redact_activity(await read_json_object(request))
        activity = parse_activity(body)
        if not activity.type:
            raise BadRequest("the activity has no type")
        # What every channel sends and the bot needs to answer at all.
        if not (
            activity.conversation and isinstance(activity.conversation.id, str) and activity.conversation.id
        ):
            raise BadRequest("the activity has no conversation id")
        if not isinstance(activity.channel_id, str) or not activity.channel_id:
            raise BadRequest("the activity has no channelId")
        if not isinstance(activity.service_url, str) or not activity.service_url.startswith(
            ("http://", "https://")
        ):
            raise BadRequest("the activity has no http(s) serviceUrl")
        auth_header = request.headers.get("Authorization", "")
        try:
            authenticated = await self._adapter.bot_framework_authentication.authenticate_request(
                activity, auth_header
            )
        except Exception as exc:
            # The SDK signals bad tokens with PermissionError but also lets lookup and decode
            # errors through; every one of them means the caller is not authenticated.
            log.info("rejected /api/messages request: %s: %s", type(exc).__name__, exc)
            raise Unauthorized("the request is not authorized") from None
        if activity.conversation is not None and activity.conversation.id:
            request.app[LIMITS].per_conversation(f"{activity.channel_id}/{activity.conversation.id}")
        bot = request.app[BOT]
        response = await self._adapter.process_activity(authenticated, activity, bot.on_turn)
        if response:
            return web.json_response(response.body, status=response.status)
        return web.Response(status=201)


def _local_channel_runner(app: web.Application) -> TurnRunner:
    """Runs the local Direct Line's turns in-process: the channel is part of this app, so
    its activities need no JWT hop in and its replies no Bot Connector hop out
    (`AftercareAdapter.process_local_activity` says what that saves)."""

    async def run(raw: dict[str, Any], deliver: BotDelivery) -> None:
        await app[ADAPTER].process_local_activity(Activity().deserialize(raw), app[BOT].on_turn, deliver)

    return run


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = {
        "webchat_bundle": request.app[WEBCHAT].bundle_present,
        "store": await _store_reachable(request.app[STORES]),
    }
    ready = all(checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )


async def _store_reachable(stores: Stores) -> bool:
    try:
        async with asyncio.timeout(2.0):
            await stores.orders.ping()
            await stores.state.ping()
    except Exception as exc:
        log.warning("store not ready: %s", exc)
        return False
    return True


async def _open_stores(app: web.Application) -> AsyncIterator[None]:
    """Opens the stores, seeds an empty embedded store, and builds the bot on them."""
    settings = app[SETTINGS]
    stores = await open_stores(settings, retention=conversation_retention(settings.retention_days))
    try:
        if settings.seed_on_start:
            await _seed(stores, settings)
        app[STORES] = stores
        model = build_chat_model(settings)
        retail = RetailService(stores.orders)
        resources = await _offline_resources(app)
        products = ProductIndex(retail, resources.classifier.embeddings, stores.state)
        await products.refresh()
        # Content safety: every message checked before the dialog, the model's answers after
        # it (an answer must not repeat the system prompt).
        safety = build_content_safety(settings, protected=[GptPrompts.load().system] if model else [])
        engine = SupportEngine(
            SafetyGuard(_dialog_engine(app, retail, model, products), safety),
            build_sentiment(settings, model),
            Recommender(retail, products),
            recommendations=settings.recommendations,
        )
        app[PACKETS] = _packet_builder(retail, model)
        app[BOT] = SupportBot(
            ConversationState(BotFrameworkStorage(stores.state)),
            engine,
            stream_interval_s=settings.stream_update_interval_s,
            trace_content=settings.trace_content,
        )
        refreshing = asyncio.create_task(_refresh_catalogue(products))
        try:
            yield
        finally:
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing
            if model is not None:
                await model.aclose()
            await safety.aclose()
            if OWN_EMBEDDINGS in app:
                await app[OWN_EMBEDDINGS].aclose()
    finally:
        await stores.aclose()


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """Deletes conversation data past RETENTION_DAYS: at start-up, then hourly (`bot.retention`)."""
    async with purging(app[STORES].state):
        yield


async def _offline_resources(app: web.Application) -> OfflineResources:
    """The embeddings, the intent examples and the policy documents, built once."""
    if OFFLINE_RESOURCES not in app:
        embeddings = build_embeddings(app[SETTINGS])
        app[OWN_EMBEDDINGS] = embeddings  # built here, so closed here (its model process)
        await embeddings.start()  # the local model loads once, off the event loop
        app[OFFLINE_RESOURCES] = await OfflineResources.build(embeddings)
    return app[OFFLINE_RESOURCES]


async def _refresh_catalogue(products: ProductIndex) -> None:
    """Keeps the product index in step with the store (staff imports, stock changes)."""
    while True:
        await asyncio.sleep(CATALOGUE_REFRESH_S)
        try:
            embedded = await products.refresh()
        except AftercareError as exc:
            log.warning("could not refresh the product index: %s", exc)
            continue
        if embedded:
            log.info("product index refreshed; %d changed products embedded", embedded)


def _dialog_engine(
    app: web.Application, retail: RetailService, model: ChatModel | None, products: ProductIndex
) -> DialogEngine:
    """The offline engine, and the GPT dialog in front of it when a chat model is configured."""
    offline = build_offline_engine(retail, app[OFFLINE_RESOURCES], products)
    if model is None:
        return offline
    settings = app[SETTINGS]
    return GptDialog(
        model,
        offline.tools,
        offline,
        prompts=GptPrompts.load(),
        turn_deadline_s=settings.llm_turn_deadline_s,
    )


async def _signer(stores: Stores, settings: Settings) -> TokenSigner:
    """The Direct Line token signer. Without a secret its key lives in the state store,
    so a restarted app and its sibling instances accept the same tokens."""
    signer = TokenSigner(settings.direct_line_secret, settings.direct_line_token_ttl_s)
    if settings.direct_line_secret:
        return signer
    stored = await stores.state.read_state(SIGNING_KEY_DOC)
    if stored is None:
        await stores.state.write_state(SIGNING_KEY_DOC, {"key": secrets.token_hex(32)})
        stored = await stores.state.read_state(SIGNING_KEY_DOC)
    assert stored is not None
    signer.use_key(bytes.fromhex(stored.doc["key"]))
    return signer


async def _seed(stores: Stores, settings: Settings) -> None:
    imported = await seed_if_empty(stores.orders, settings.dataset_dir)
    if imported:
        log.info("seeded the order store with %d records from %s", imported, settings.dataset_dir)


async def _local_channel(app: web.Application) -> AsyncIterator[None]:
    """Builds the local Direct Line channel, whole, once the stores are open: its logs in
    the state store, its turns run by the bot, its Bot Connector endpoint and Web Chat
    page on top; forgets idle conversations every ten minutes; closes it at shutdown."""
    settings, stores = app[SETTINGS], app[STORES]
    directline = DirectLineService(
        await _signer(stores, settings),
        stores.state,
        _local_channel_runner(app),
        bot_id=settings.app_id or "aftercare-bot",
        bot_name=BOT_NAME,
        public_url=settings.public_url,
        replay_after_s=settings.direct_line_replay_after_s,
        limits=app[LIMITS],
    )
    app[DIRECTLINE] = directline
    app[CONNECTOR] = ConnectorEndpoint(directline)
    app[WEBCHAT] = WebChatPage(
        directline, settings.webchat_bundle, policy=webchat_policy(settings.frame_ancestors)
    )

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(600)
            forgotten = directline.conversations.sweep()
            if forgotten:
                log.info("forgot %d idle direct line conversations", forgotten)

    task = asyncio.create_task(sweep_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await directline.aclose()


async def _phone_calls(app: web.Application) -> AsyncIterator[None]:
    """Phone calls through ACS: the tickets the calls' URLs carry (their key in the state
    store, so sibling instances accept each other's), and the webhooks that answer calls
    and take their events, on the Call Automation client when ACS is configured (503
    otherwise); the client is closed at shutdown."""
    key = await stored_ticket_key(app[STORES].state)
    app[CALL_TICKETS] = CallTickets(key)
    webhooks = CallWebhooks.from_settings(
        app[SETTINGS],
        app[CALL_TICKETS],
        key,
        limits=app[LIMITS],
        client_options=app.get(CALL_CLIENT_OPTIONS),
    )
    app[CALL_WEBHOOKS] = webhooks
    yield
    await webhooks.aclose()


# Customers read for the recognizer's names (a grammar locally, a phrase list on Azure).
VOCABULARY_CUSTOMERS = 20_000


async def _vocabulary(stores: Stores) -> Vocabulary:
    """The names callers say: customers' first and last names, and product names."""
    firsts: set[str] = set()
    lasts: set[str] = set()
    read = 0
    async for _, customer in stores.orders.iter_records(Collection.CUSTOMERS):
        name = customer.get("name") if isinstance(customer, dict) else None
        if isinstance(name, dict):
            firsts.add(str(name.get("first_name", "")).strip())
            lasts.add(str(name.get("last_name", "")).strip())
        read += 1
        if read >= VOCABULARY_CUSTOMERS:
            break
    products = set((await stores.orders.list_product_types()).keys())
    return Vocabulary(
        first_names=tuple(sorted(firsts - {""})),
        last_names=tuple(sorted(lasts - {""})),
        products=tuple(sorted(products)),
    )


async def _voice_channel(app: web.Application) -> AsyncIterator[None]:
    """The phone channel. Its speech models load off the event loop: at start-up when ACS
    sends calls here, else when the first call comes in (a chat-only shop never pays)."""
    settings, stores = app[SETTINGS], app[STORES]
    owned = SPEECH not in app
    if owned:

        async def build() -> tuple[SpeechToText, TextToSpeech]:
            return build_speech(settings, await _vocabulary(stores))

        app[SPEECH] = SpeechStack(build)
    speech = app[SPEECH]
    phone_number = bool(settings.acs_connection_string or settings.acs_endpoint)
    voice = VoiceChannel(
        speech,
        _local_channel_runner(app),
        tickets=app.get(CALL_TICKETS),
        limits=app[LIMITS],
        idle_timeout_s=settings.voice_idle_timeout_s,
        bot_id=settings.app_id or "aftercare-bot",
        bot_name=BOT_NAME,
        max_calls=settings.voice_max_calls,
        require_tickets=phone_number,
    )
    app[VOICE] = voice
    warming = asyncio.create_task(_warm_speech(speech)) if phone_number and owned else None
    try:
        yield
    finally:
        if warming is not None:
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)
        await voice.aclose()
        if owned:
            await speech.aclose()


async def _warm_speech(speech: SpeechStack) -> None:
    try:
        stt, tts = await speech.ready()
    except AftercareError as exc:
        log.error("the phone channel's speech could not load: %s", exc)
        return
    log.info("phone channel ready: %s, %s", stt.name, tts.name)


def _packet_builder(retail: RetailService, model: ChatModel | None) -> PacketBuilder:
    async def build(state: DialogState, reason: str, trigger: Trigger) -> Packet:
        return await build_packet(state, reason, trigger, retail, model)

    return build


async def _human_agents(app: web.Application) -> AsyncIterator[None]:
    """The handoff queue, the relay to and from agents, and the agent console, on the
    state store; watches the store for what other instances change."""
    settings, stores = app[SETTINGS], app[STORES]
    delivery = ChannelDelivery(app[ADAPTER], app[DIRECTLINE], settings.app_id, phone=app[VOICE])
    handoff = HandoffService(HandoffStore(stores.state), delivery, support_hours=settings.support_hours)
    agents = Agents(stores.state)
    handoff.watch_presence(agents.online)
    app[HANDOFF] = handoff
    app[AGENT_CONSOLE] = AgentConsole(handoff, agents, app[LIMITS])
    app[BOT].handoff = HandoffDesk(handoff, app[PACKETS], settings.handoff_mode)
    await handoff.prime()
    task = asyncio.create_task(handoff.poll_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _end_console_streams(app: web.Application) -> None:
    # Open agent consoles would otherwise hold the shutdown for its whole timeout.
    if HANDOFF in app:
        app[HANDOFF].close_streams()


async def _connector_threads(app: web.Application) -> AsyncIterator[None]:
    """The threads the Bot Framework SDK's blocking HTTP replies run on (`bot.sdk_patches`),
    owned by this app: started with it, shut down with it."""
    executor = ThreadPoolExecutor(CONNECTOR_THREADS, thread_name_prefix="connector-http")
    loop = asyncio.get_running_loop()
    use_connector_threads(loop, executor)
    yield
    release_connector_threads(loop)
    executor.shutdown(wait=False, cancel_futures=True)


def create_app(
    settings: Settings,
    *,
    offline_resources: OfflineResources | None = None,
    speech: SpeechStack | None = None,
) -> web.Application:
    """The whole service. `offline_resources` and `speech` let a process that builds many
    apps (the tests) embed the intent examples and load the speech models once."""
    apply_sdk_patches()
    app = web.Application(
        middlewares=[security_headers, error_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    adapter = AftercareAdapter(bot_framework_authentication(settings))
    app[SETTINGS] = settings
    app[ADAPTER] = adapter
    app[LIMITS] = RateLimits.default(
        enabled=settings.rate_limits, trusted_proxy_hops=settings.trusted_proxy_hops
    )
    if offline_resources is not None:
        app[OFFLINE_RESOURCES] = offline_resources
    if speech is not None:
        app[SPEECH] = speech

    app.add_routes([web.post("/api/messages", MessagesEndpoint(adapter).handle)])
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
    app.add_routes([web.get("/metrics", MetricsEndpoint(settings.metrics_token).handle)])
    # The channel is built at start-up (it needs the stores); its routes are served by it then.
    app.add_routes(deferred_routes(DIRECTLINE, DirectLineService.ROUTES))
    app.add_routes(deferred_routes(CONNECTOR, ConnectorEndpoint.ROUTES))
    app.add_routes(deferred_routes(WEBCHAT, WebChatPage.ROUTES))
    app.add_routes(deferred_routes(AGENT_CONSOLE, AgentConsole.ROUTES))
    app.add_routes(deferred_routes(CALL_WEBHOOKS, CallWebhooks.ROUTES))
    app.add_routes(deferred_routes(VOICE, VoiceChannel.ROUTES))
    app.cleanup_ctx.append(_connector_threads)
    app.cleanup_ctx.append(_open_stores)
    app.cleanup_ctx.append(_retention)
    app.cleanup_ctx.append(_local_channel)
    app.cleanup_ctx.append(_phone_calls)
    app.cleanup_ctx.append(_voice_channel)
    app.cleanup_ctx.append(_human_agents)
    app.on_shutdown.append(_end_console_streams)
    return app
