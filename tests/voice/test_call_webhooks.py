"""Phone calls' webhooks: Event Grid's `IncomingCall` answered through the real Call
Automation SDK against a local stand-in for ACS (HTTPS on loopback, its certificate made
here), the validation handshakes, bad input, ACS failures, and the call's events route."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from bot.channels.call_automation import AcsCallAnswerer
from bot.channels.call_tickets import (
    CALL_EVENTS,
    MEDIA_STREAM,
    CallTicket,
    CallTickets,
    stored_ticket_key,
)
from bot.channels.calls import CallWebhooks, build_call_answerer, mask_caller, websocket_base
from bot.cli import AccessLogger
from bot.errors import Unauthorized
from bot.http_errors import error_middleware
from bot.rate_limits import RateLimits
from bot.service import CALL_CLIENT_OPTIONS, CALL_TICKETS, CALL_WEBHOOKS, STORES, create_app
from bot.settings import Settings, load_settings
from dialogs import OfflineResources
from shop.errors import ConfigurationError

CALLER = "+16045550123"
SHOP_NUMBER = "+18335550100"
SECRET = "event-grid-secret-0123456789abcdef"
KEY = bytes(range(32))
ACCESS_KEY = base64.b64encode(b"stand-in access key for the tests, 32+ bytes").decode()


# -- a stand-in for ACS: HTTPS on loopback ----------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: the SDK insists on https (it drops the
    scheme of the connection string's endpoint), so the stand-in speaks TLS and the client
    trusts it through azure-core's `connection_verify`."""
    folder = tmp_path_factory.mktemp("acs-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACS stand-in")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    signature_valid: bool

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class StandInAcs:
    """Answers `POST /calling/callConnections:answer` as ACS does, or fails as told."""

    cert_path: Path
    status: int = 200
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.url}/;accesskey={ACCESS_KEY}"

    def client_options(self, **overrides: Any) -> dict[str, Any]:
        return {"connection_verify": str(self.cert_path), "retry_backoff_factor": 0.01, **overrides}

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), raw, _signed(request, raw)))
        if self.hang:
            await self.release.wait()
        if request.path != "/calling/callConnections:answer":
            return web.json_response({"error": {"code": "NotFound", "message": "no such API"}}, status=404)
        if self.status != 200:
            message = "Internal server error." if self.status >= 500 else "Call already answered."
            return web.json_response(
                {"error": {"code": str(self.status), "message": message}}, status=self.status
            )
        body = json.loads(raw)
        return web.json_response(
            {
                "callConnectionId": f"connection-{len(self.requests)}",
                "serverCallId": "server-call-1",
                "callConnectionState": "connecting",
                "callbackUri": body["callbackUri"],
                "correlationId": str(uuid.uuid4()),
                "targets": [],
            }
        )


def _signed(request: web.Request, raw: bytes) -> bool:
    """Checks Communication Services' HMAC-SHA256 request signature, as ACS would."""
    content_hash = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    authorization = request.headers.get("Authorization", "")
    if request.headers.get("x-ms-content-sha256") != content_hash:
        return False
    prefix = "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="
    if not authorization.startswith(prefix):
        return False
    signed = (
        f"{request.method}\n{request.raw_path}\n{request.headers['x-ms-date']};{request.host};{content_hash}"
    )
    expected = hmac.new(base64.b64decode(ACCESS_KEY), signed.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(expected).decode(), authorization.removeprefix(prefix))


@pytest.fixture
async def acs(tls_files: tuple[Path, Path]) -> AsyncIterator[StandInAcs]:
    cert_path, key_path = tls_files
    stand_in = StandInAcs(cert_path)
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", stand_in.handle)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=context)
    stand_in.url = str(server.make_url("")).rstrip("/")
    assert stand_in.url.startswith("https://127.0.0.1:")
    yield stand_in
    stand_in.release.set()
    await server.close()


# -- the webhooks on their own, and in the whole app ------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Webhooks:
    url: str
    webhooks: CallWebhooks
    media_tickets: CallTickets
    event_tickets: CallTickets


@pytest.fixture
async def start_webhooks(
    make_settings: Callable[..., Settings], acs: StandInAcs
) -> AsyncIterator[Callable[..., Any]]:
    """Starts `CallWebhooks` answering through the real SDK against the stand-in."""
    servers: list[TestServer] = []
    closing: list[CallWebhooks] = []

    async def start(
        *, deadline_s: float = 12.0, limits: RateLimits | None = None, **client_options: Any
    ) -> Webhooks:
        port = _free_port()
        public_url = f"http://127.0.0.1:{port}"
        settings = make_settings(ACS_CONNECTION_STRING=acs.connection_string, PUBLIC_URL=public_url)
        media, events = CallTickets(KEY), CallTickets(KEY, 3600, audience=CALL_EVENTS)
        answerer = AcsCallAnswerer.from_settings(settings, **acs.client_options(**client_options))
        webhooks = CallWebhooks(
            answerer,
            media,
            events,
            public_url=public_url,
            webhook_secret=SECRET,
            limits=limits,
            answer_deadline_s=deadline_s,
        )
        closing.append(webhooks)
        app = web.Application(middlewares=[error_middleware])
        app.add_routes(webhooks.routes())
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        servers.append(server)
        return Webhooks(public_url, webhooks, media, events)

    yield start
    acs.release.set()
    for server in servers:
        await server.close()
    for webhooks in closing:
        await webhooks.aclose()


def incoming_call_event(caller: str = CALLER, *, correlation_id: str | None = None) -> dict[str, Any]:
    """An `IncomingCall` as Event Grid delivers it (the Event Grid schema's example)."""
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/0000/resourcegroups/shop/providers/microsoft.communication/"
        "communicationservices/aftercare-acs",
        "subject": f"/caller/4:{caller}/recipient/4:{SHOP_NUMBER}",
        "data": {
            "to": {"kind": "phoneNumber", "rawId": f"4:{SHOP_NUMBER}", "phoneNumber": {"value": SHOP_NUMBER}},
            "from": {"kind": "phoneNumber", "rawId": f"4:{caller}", "phoneNumber": {"value": caller}},
            "serverCallId": "aHR0cHM6Ly9hcGkuZmxpZ2h0cHJveHkuc2t5cGUuY29tL2FwaS92Mi9jcC9jb252",
            "callerDisplayName": "",
            "incomingCallContext": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJjYyI6Ikg0c0lBQUFBQUFBRUFN"
            + "x" * 900,
            "correlationId": correlation_id or str(uuid.uuid4()),
        },
        "eventType": "Microsoft.Communication.IncomingCall",
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": "2025-05-06T17:18:42.5542219Z",
    }


def call_automation_event(
    kind: str, correlation_id: str, connection_id: str = "connection-1"
) -> dict[str, Any]:
    """A Call Automation callback, a CloudEvent, as ACS posts it to the callback URL."""
    return {
        "id": str(uuid.uuid4()),
        "source": f"calling/callConnections/{connection_id}",
        "type": f"Microsoft.Communication.{kind}",
        "data": {
            "callConnectionId": connection_id,
            "serverCallId": "server-call-1",
            "correlationId": correlation_id,
            "resultInformation": {"code": 200, "subCode": 0, "message": "Action completed successfully."},
            "publicEventType": f"Microsoft.Communication.{kind}",
        },
        "time": "2025-05-06T17:18:44.1Z",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": f"calling/callConnections/{connection_id}",
    }


async def _post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)


# -- the whole app ------------------------------------------------------------------------


async def test_an_incoming_call_is_answered_with_its_audio_streamed_to_the_voice_route(
    make_settings: Callable[..., Settings],
    offline_resources: OfflineResources,
    acs: StandInAcs,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    port = _free_port()
    public_url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        ACS_CONNECTION_STRING=acs.connection_string, PUBLIC_URL=public_url, ACS_WEBHOOK_SECRET=SECRET
    )
    settings.validate_combinations()  # a configuration the app starts with
    app = create_app(settings, offline_resources=offline_resources)
    app[CALL_CLIENT_OPTIONS] = acs.client_options()
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        event = incoming_call_event()
        call_id = event["data"]["correlationId"]
        status, body = await _post(http, f"{public_url}/api/calls/incoming?secret={SECRET}", [event])
        assert (status, body) == (200, {"answered": 1, "refused": 0, "ignored": 0})

        [answer] = acs.requests
        assert answer.path == "/calling/callConnections:answer"
        assert answer.headers["Authorization"].startswith("HMAC-SHA256 ")
        assert answer.signature_valid, "the request is not signed with the connection string's key"
        request = answer.json
        assert request["incomingCallContext"] == event["data"]["incomingCallContext"]
        callback = URL(request["callbackUri"])
        assert str(callback.with_query(None)) == f"{public_url}/api/calls/events"
        streaming = request["mediaStreamingOptions"]
        transport = URL(streaming.pop("transportUrl"))
        assert streaming == {
            "transportType": "websocket",
            "contentType": "audio",
            "audioChannelType": "unmixed",
            "startMediaStreaming": True,
            "enableBidirectional": True,
            "audioFormat": "pcm16KMono",
            "enableDtmfTones": True,
        }
        assert str(transport.with_query(None)) == f"ws://127.0.0.1:{port}/api/voice"
        # The voice channel redeems the stream's ticket: the caller's number, this call.
        assert app[CALL_TICKETS].redeem(transport.query["ticket"]) == CallTicket(CALLER, call_id)
        with pytest.raises(Unauthorized):  # the events' ticket does not open the audio route
            app[CALL_TICKETS].redeem(callback.query["ticket"])

        # ACS then posts the call's events to the callback URL it was given.
        for kind in ("CallConnected", "MediaStreamingStarted"):
            status, _ = await _post(http, str(callback), [call_automation_event(kind, call_id)])
            assert status == 200
        record = app[CALL_WEBHOOKS].call(call_id)
        assert record is not None and (record.state, record.call_connection_id) == (
            "connected",
            "connection-1",
        )
        status, _ = await _post(http, str(callback), [call_automation_event("CallDisconnected", call_id)])
        assert status == 200 and record.state == "disconnected"
    finally:
        await server.close()
    logged = caplog.text
    assert "answered call" in logged and "CallConnected" in logged
    assert CALLER not in logged and CALLER[1:] not in logged, "the caller's number was logged"
    assert mask_caller(CALLER) in logged


async def test_without_acs_both_routes_answer_503_naming_the_settings(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    base_url = str(server.make_url("")).rstrip("/")
    for path in ("/api/calls/incoming", "/api/calls/events?ticket=x"):
        status, body = await _post(http, base_url + path, [incoming_call_event()])
        assert status == 503
        message = body["error"]["message"]
        assert "ACS_CONNECTION_STRING" in message and "ACS_ENDPOINT" in message and "PUBLIC_URL" in message
    # The voice channel's tickets exist anyway, their key kept in the state store.
    app = server.app
    assert app is not None
    assert CallTickets(await stored_ticket_key(app[STORES].state)).redeem(
        app[CALL_TICKETS].issue(CALLER, "call-1")
    ) == CallTicket(CALLER, "call-1")


# -- Event Grid ---------------------------------------------------------------------------


async def test_the_event_grid_validation_handshake_answers_the_code(
    start_webhooks: Callable[..., Any], acs: StandInAcs, http: aiohttp.ClientSession
) -> None:
    hooks = await start_webhooks()
    validation = {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/0000/resourcegroups/shop/providers/microsoft.communication/"
        "communicationservices/aftercare-acs",
        "subject": "",
        "data": {
            "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
            "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/calls/validate?id=1",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2025-05-06T17:18:42Z",
        "metadataVersion": "1",
        "dataVersion": "1",
    }
    status, body = await _post(http, f"{hooks.url}/api/calls/incoming?secret={SECRET}", [validation])
    assert (status, body) == (200, {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    # Without the secret even the handshake is refused: no one else can subscribe the app.
    status, _ = await _post(http, f"{hooks.url}/api/calls/incoming", [validation])
    assert status == 401
    # The CloudEvents handshake (OPTIONS), for a subscription in the CloudEvents schema.
    async with http.options(
        f"{hooks.url}/api/calls/incoming?secret={SECRET}",
        headers={"WebHook-Request-Origin": "eventgrid.azure.net"},
    ) as resp:
        assert resp.status == 200 and resp.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert acs.requests == []


async def test_several_calls_in_one_delivery_are_answered_and_other_events_acknowledged(
    start_webhooks: Callable[..., Any], acs: StandInAcs, http: aiohttp.ClientSession
) -> None:
    hooks = await start_webhooks()
    first, second = incoming_call_event(), incoming_call_event("+442079460000")
    anonymous = incoming_call_event()
    anonymous["data"]["from"] = {"kind": "communicationUser", "rawId": "8:acs:resource_user-1"}
    other = {"id": "e1", "eventType": "Microsoft.Communication.CallEnded", "data": {"durationOfCall": 49.7}}
    events = [first, other, second, anonymous]
    status, body = await _post(http, f"{hooks.url}/api/calls/incoming?secret={SECRET}", events)
    assert (status, body) == (200, {"answered": 3, "refused": 0, "ignored": 1})
    callers = sorted(
        hooks.media_tickets.redeem(
            URL(r.json["mediaStreamingOptions"]["transportUrl"]).query["ticket"]
        ).caller
        for r in acs.requests
    )
    assert callers == sorted([CALLER, "+442079460000", "8:acs:resource_user-1"])
    # A delivery repeated by Event Grid does not answer the same calls again.
    status, body = await _post(http, f"{hooks.url}/api/calls/incoming?secret={SECRET}", events)
    assert status == 200 and len(acs.requests) == 3


def _without(event: dict[str, Any], name: str) -> dict[str, Any]:
    event["data"].pop(name)
    return event


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"eventType": "Microsoft.Communication.IncomingCall"}', "must be a JSON array of events"),
        (b"[]", "holds no events"),
        (b'[1, "two"]', "event 0 is not a JSON object"),
        (json.dumps([{"id": "1", "data": {}}]).encode(), "event 1 has no eventType"),
        (
            json.dumps([_without(incoming_call_event(), "incomingCallContext")]).encode(),
            "incomingCallContext",
        ),
        (json.dumps([_without(incoming_call_event(), "from")]).encode(), "names no caller"),
        (json.dumps([_without(incoming_call_event(), "correlationId")]).encode(), "correlationId"),
        (json.dumps([{**incoming_call_event(), "data": "x"}]).encode(), "has no data object"),
        (
            json.dumps(
                [{"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {}}]
            ).encode(),
            "validationCode",
        ),
    ],
    ids=[
        "not-json",
        "not-an-array",
        "empty",
        "not-objects",
        "no-type",
        "no-context",
        "no-caller",
        "no-correlation-id",
        "data-not-object",
        "validation-without-code",
    ],
)
async def test_a_malformed_delivery_is_a_400_with_a_sentence_and_answers_nothing(
    start_webhooks: Callable[..., Any],
    acs: StandInAcs,
    http: aiohttp.ClientSession,
    body: bytes,
    sentence: str,
) -> None:
    hooks = await start_webhooks()
    if body.startswith(b"[{"):
        # A good call beside a bad event is not answered either: the whole delivery is refused.
        body = json.dumps([incoming_call_event(), *json.loads(body)]).encode()
    status, answer = await _post(http, f"{hooks.url}/api/calls/incoming?secret={SECRET}", body)
    assert status == 400 and sentence in answer["error"]["message"], answer
    assert acs.requests == []


async def test_a_wrong_or_missing_secret_is_a_401(
    start_webhooks: Callable[..., Any], acs: StandInAcs, http: aiohttp.ClientSession
) -> None:
    hooks = await start_webhooks()
    for query in ("", "?secret=", "?secret=guess", f"?secret={SECRET[:-1]}", f"?secret={SECRET}x"):
        status, body = await _post(http, f"{hooks.url}/api/calls/incoming{query}", [incoming_call_event()])
        assert status == 401 and body["error"]["message"] == "the webhook secret is missing or wrong"
    assert acs.requests == []


async def test_acs_failing_is_a_503_so_event_grid_delivers_the_call_again(
    start_webhooks: Callable[..., Any], acs: StandInAcs, http: aiohttp.ClientSession
) -> None:
    hooks = await start_webhooks(retry_total=1)
    event = incoming_call_event()
    acs.status = 500
    status, body = await _post(http, f"{hooks.url}/api/calls/incoming?secret={SECRET}", [event])
    assert status == 503 and "deliver the events again" in body["error"]["message"]
    assert len(acs.requests) == 2  # the SDK retried once, as configured
    acs.status = 200  # ACS recovers; Event Grid's next delivery is answered
    status, body = await _post(http, f"{hooks.url}/api/calls/incoming?secret={SECRET}", [event])
    assert (status, body["answered"], len(acs.requests)) == (200, 1, 3)


@pytest.mark.parametrize(
    ("options", "deadline_s"),
    [({"read_timeout": 0.3, "retry_total": 0}, 12.0), ({}, 0.3)],
    ids=["sdk-read-timeout", "webhook-deadline"],
)
async def test_acs_not_answering_in_time_is_a_503(
    start_webhooks: Callable[..., Any],
    acs: StandInAcs,
    http: aiohttp.ClientSession,
    options: dict[str, Any],
    deadline_s: float,
) -> None:
    hooks = await start_webhooks(deadline_s=deadline_s, **options)
    acs.hang = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, body = await _post(
        http, f"{hooks.url}/api/calls/incoming?secret={SECRET}", [incoming_call_event()]
    )
    assert status == 503 and body["error"]["code"] == "ServiceUnavailable"
    assert loop.time() - started < 5


async def test_acs_refusing_a_call_for_good_is_logged_and_acknowledged(
    start_webhooks: Callable[..., Any],
    acs: StandInAcs,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = await start_webhooks()
    acs.status = 400  # the call was hung up or answered elsewhere: asking again cannot help
    event = incoming_call_event()
    status, body = await _post(http, f"{hooks.url}/api/calls/incoming?secret={SECRET}", [event])
    assert (status, body) == (200, {"answered": 0, "refused": 1, "ignored": 0})
    assert "ACS refused it" in caplog.text and "400" in caplog.text
    status, _ = await _post(http, f"{hooks.url}/api/calls/incoming?secret={SECRET}", [event])
    assert status == 200 and len(acs.requests) == 1


async def test_the_call_webhooks_are_rate_limited_per_address(
    start_webhooks: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    hooks = await start_webhooks(limits=RateLimits.default(trusted_proxy_hops=1))
    statuses = []
    for _ in range(121):
        async with http.post(
            f"{hooks.url}/api/calls/incoming", json=[], headers={"X-Forwarded-For": "203.0.113.9"}
        ) as resp:
            statuses.append(resp.status)
    assert statuses[:120] == [401] * 120 and statuses[120] == 429


# -- the call's events --------------------------------------------------------------------


async def test_the_events_route_needs_a_valid_ticket_for_that_call(
    start_webhooks: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    hooks = await start_webhooks()
    events_url = f"{hooks.url}/api/calls/events"
    body = [call_automation_event("CallConnected", "call-1")]
    expired = CallTickets(KEY, 60, audience=CALL_EVENTS, clock=lambda: 1_000_000.0).issue(CALLER, "call-1")
    forged = CallTickets(bytes(32), audience=CALL_EVENTS).issue(CALLER, "call-1")
    refused = {
        "no ticket": "",
        "forged": forged,
        "expired": expired,
        "tampered": _with_caller(hooks.event_tickets.issue("+15550000000", "call-1"), CALLER),
        "the audio stream's": hooks.media_tickets.issue(CALLER, "call-1"),
        "another call's": hooks.event_tickets.issue(CALLER, "call-2"),
    }
    for reason, ticket in refused.items():
        status, answer = await _post(http, f"{events_url}?ticket={ticket}", body)
        assert status == 401, reason
        assert answer["error"]["message"].startswith("the call ticket"), answer
    status, answer = await _post(
        http, f"{events_url}?ticket={hooks.event_tickets.issue(CALLER, 'call-1')}", body
    )
    assert (status, answer) == (200, {"received": 1})
    status, answer = await _post(
        http, f"{events_url}?ticket={hooks.event_tickets.issue(CALLER, 'call-1')}", b"{"
    )
    assert status == 400


def _with_caller(ticket: str, caller: str) -> str:
    """The ticket with its payload's caller changed and its signature left as it was."""
    header, payload, signature = ticket.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = json.dumps({**claims, "caller": caller}, separators=(",", ":")).encode()
    return ".".join([header, base64.urlsafe_b64encode(changed).decode().rstrip("="), signature])


async def test_failed_call_events_are_logged_as_warnings_with_acs_result(
    start_webhooks: Callable[..., Any], http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = await start_webhooks()
    failed = call_automation_event("MediaStreamingFailed", "call-1")
    failed["data"]["resultInformation"] = {
        "code": 500,
        "subCode": 8581,
        "message": "Stream connection failed.",
    }
    ticket = hooks.event_tickets.issue(CALLER, "call-1")
    status, _ = await _post(http, f"{hooks.url}/api/calls/events?ticket={ticket}", [failed])
    assert status == 200
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "MediaStreamingFailed (code 500, subcode 8581)" in warning.getMessage()
    assert "connection connection-1" in warning.getMessage() and CALLER not in caplog.text


# -- tickets, settings, helpers -----------------------------------------------------------


def test_a_ticket_redeems_to_its_caller_and_call_and_nothing_else() -> None:
    now = [1_000_000.0]
    tickets = CallTickets(KEY, ttl_s=300, clock=lambda: now[0])
    ticket = tickets.issue(CALLER, "call-1")
    assert URL(f"ws://h/api/voice?ticket={ticket}").query["ticket"] == ticket  # URL-safe as it is
    assert tickets.redeem(ticket) == CallTicket(CALLER, "call-1")
    assert tickets.issue(CALLER, "call-1") != ticket
    for bad in (ticket[:-1], ticket + "a", "", "a.b.c", ticket.replace(ticket.split(".")[1], "e30")):
        with pytest.raises(Unauthorized, match="the call ticket is not valid"):
            tickets.redeem(bad)
    with pytest.raises(Unauthorized):
        CallTickets(bytes(32), clock=lambda: now[0]).redeem(ticket)
    with pytest.raises(Unauthorized):
        CallTickets(KEY, audience=CALL_EVENTS, clock=lambda: now[0]).redeem(ticket)
    now[0] += 301
    with pytest.raises(Unauthorized, match="expired"):
        tickets.redeem(ticket)
    assert MEDIA_STREAM != CALL_EVENTS
    with pytest.raises(ValueError):
        CallTickets(b"short")


def test_acs_needs_a_webhook_secret_and_a_public_url(make_settings: Callable[..., Settings]) -> None:
    acs = {"ACS_CONNECTION_STRING": f"endpoint=https://shop.communication.azure.com/;accesskey={ACCESS_KEY}"}
    with pytest.raises(ConfigurationError, match="ACS_WEBHOOK_SECRET"):
        make_settings(**acs, PUBLIC_URL="https://bot.shop.example").validate_combinations()
    with pytest.raises(ConfigurationError, match="PUBLIC_URL"):
        make_settings(**acs, ACS_WEBHOOK_SECRET=SECRET).validate_combinations()
    make_settings(
        **acs, PUBLIC_URL="https://bot.shop.example", ACS_WEBHOOK_SECRET=SECRET
    ).validate_combinations()
    for weak in ("short", "has spaces in it, sixteen+", "with&ampersand=more-than-16"):
        with pytest.raises(ConfigurationError, match="ACS_WEBHOOK_SECRET"):
            load_settings(_env_file=None, ACS_WEBHOOK_SECRET=weak, SEED_ON_START=False)


async def test_an_endpoint_alone_uses_the_managed_identity_and_closes_cleanly(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        ACS_ENDPOINT="https://shop.communication.azure.com", PUBLIC_URL="https://bot.example"
    )
    answerer = build_call_answerer(settings)
    assert isinstance(answerer, AcsCallAnswerer)
    await answerer.aclose()
    assert build_call_answerer(make_settings()) is None


def test_urls_and_masks() -> None:
    assert websocket_base("https://bot.shop.example/support") == "wss://bot.shop.example/support"
    assert websocket_base("http://127.0.0.1:3978") == "ws://127.0.0.1:3978"
    assert mask_caller(CALLER) == "+1…23"
    assert mask_caller("8:acs:resource_user-1") == "8:…"
    assert CALLER[2:-2] not in mask_caller(CALLER)


def test_access_log_lines_leave_out_query_strings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.access")
    request = make_mocked_request("POST", f"/api/calls/incoming?secret={SECRET}")
    AccessLogger(logging.getLogger("test.access"), "").log(request, web.Response(status=200), 0.01)
    assert "/api/calls/incoming" in caplog.text and SECRET not in caplog.text
