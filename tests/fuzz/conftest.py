"""The fuzz tests' harness: a hypothesis profile, one live app per test module on a loop
of its own, raw HTTP/1.1 requests (`tests/support/raw_http.py`) for bytes aiohttp's client
refuses to send, and the properties every answer must have.

Why the app runs in a thread
----------------------------
Hypothesis' `@given` cannot wrap an `async def` test under pytest-asyncio: it calls the
test function once per example, synchronously, and pytest-asyncio's function-scoped
loop (which runs the `server` fixture) is not running while a sync test body runs. So
each module gets one app, started once on an event loop that a daemon thread owns and
keeps running for the whole module. The tests stay plain sync functions: every example
builds its request as a coroutine and hands it to that loop with
`asyncio.run_coroutine_threadsafe`, waiting with a timeout. The app serves on a real
loopback socket between and during examples, exactly like a long-lived process, so state
accumulates across thousands of requests (which is what the "no state corruption" checks
at the end of each module are about), and a request that hangs fails its example instead
of deadlocking the run. Everything that touches the app (its stores, its signer) runs on
the app's loop too, through the same `LiveApp.call`.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import logging
import os
import shutil
import socket
import sqlite3
import threading
import traceback
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from bot.handoff.agents import Agents, Session
from bot.handoff.records import HandoffRecord, QueueIndex
from bot.service import DIRECTLINE, SIGNING_KEY_DOC, STORES, create_app
from bot.settings import Settings
from bot.state_storage import BotFrameworkStorage
from dialogs import OfflineResources
from dialogs.turn import DialogState
from tests.handoff.conftest import NOAH_EMAIL, PASSWORD, say, texts
from tests.support.directline import DirectLineConversation, start_conversation
from tests.support.raw_http import raw_request

T = TypeVar("T")

# ----- hypothesis -------------------------------------------------------------------------

FUZZ_PROFILE = "aftercare-fuzz"
# deadline=None: a request's time depends on what the app's loop is busy with (a bot turn
# from an earlier example), not on the input, so a per-example deadline would be flaky.
# derandomize=True: every run (a developer's, CI's) draws the same examples, so a failure
# in CI is one that reproduces, and a change to the app, not a new seed, is what makes a
# run fail. database=None: nothing saved between runs (hypothesis still keeps its own
# caches in `.hypothesis/`, which ignores itself); a failure prints its reproduction
# blob instead (print_blob). The function-scoped-fixture check is suppressed
# because the only function-scoped fixtures these tests get are the autouse `loopback_only`
# and `no_name_lookups` (monkeypatches meant to hold across every example); the app is
# module-scoped.
hypothesis_settings.register_profile(
    FUZZ_PROFILE,
    deadline=None,
    max_examples=100,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# A longer run for a developer hunting bugs: AFTERCARE_FUZZ_SCALE=20 gives each test 20x its
# examples (the first ones are the same as in the default run).
FUZZ_SCALE = float(os.environ.get("AFTERCARE_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> hypothesis_settings:
    """The profile with `examples` examples (scaled by AFTERCARE_FUZZ_SCALE)."""
    return hypothesis_settings(
        hypothesis_settings.get_profile(FUZZ_PROFILE), max_examples=max(1, int(examples * FUZZ_SCALE))
    )


# The longest request line or header aiohttp's HTTP parser takes (it answers a plain 400 past it).
PARSER_LIMIT = 8000

# ----- answers and their properties ------------------------------------------------------


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes
    # What was sent, for the failure message.
    request: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # The request line or a header was longer than aiohttp's parser takes (8190 bytes).
    over_parser_limits: bool = False

    def json(self) -> Any:
        return json.loads(self.body)


def _describe(answer: Answer) -> str:
    body = answer.body[:600].decode("utf-8", "replace")
    return f"{answer.request}\n-> {answer.status} {answer.content_type}: {body}"


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def assert_well_formed(answer: Answer, *, protocol_level_400: bool = False) -> None:
    """The fuzz properties of one answer: never a 5xx; a 4xx carries the app's JSON error
    body ({"error": {"code", "message"}}); a 2xx with a body carries JSON.

    `protocol_level_400`: the request itself was not valid HTTP (raw bytes in a header
    that aiohttp's parser refuses): aiohttp then answers its own plain `400 Bad Request`
    before the app sees anything, which is right, and only that is accepted as well. The
    same holds for a request line or header past the parser's size limit."""
    assert answer.status < 500, f"server error\n{_describe(answer)}"
    if answer.status >= 400:
        before_the_app = protocol_level_400 or answer.over_parser_limits
        if before_the_app and answer.status == 400 and not answer.content_type.endswith("json"):
            return
        assert answer.content_type == "application/json", f"a 4xx without a JSON body\n{_describe(answer)}"
        error = answer.json().get("error")
        assert isinstance(error, dict), _describe(answer)
        assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), _describe(answer)
        assert "Traceback" not in error["message"], _describe(answer)
    elif answer.body and answer.content_type == "application/json":
        answer.json()


def assert_no_crash(app: LiveApp, answer: Answer, errors_before: int, *, settle: bool = False) -> None:
    """Nothing went wrong behind the answer: no ERROR in the app's log since
    `errors_before`. `settle`: wait for the Direct Line turns the request started first
    (they run after the answer), so a crashing turn is pinned to the input behind it."""
    if settle:
        app.settle()
    crashed = app.errors.since(errors_before)
    assert not crashed, f"the app logged errors for {answer.request}:\n" + "\n".join(crashed)


# ----- the live app -----------------------------------------------------------------------


class LiveApp:
    """The whole app (`create_app`) on a loopback port, served by a loop in a thread."""

    def __init__(self, settings: Settings, resources: OfflineResources) -> None:
        self._settings = settings
        self._resources = resources
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.server: TestServer | None = None
        self.session: aiohttp.ClientSession | None = None
        self.inbox: TestServer | None = None
        self.inbox_received = 0
        self.errors = _ErrorLog()
        self._thread = threading.Thread(target=self._run, name="fuzz-app", daemon=True)

    # -- life -------------------------------------------------------------------------

    def start(self) -> LiveApp:
        logging.getLogger().addHandler(self.errors)
        self._thread.start()
        if not self._ready.wait(120):
            raise RuntimeError("the app did not start within 120 s")
        if self._failure is not None:
            raise RuntimeError("the app did not start") from self._failure
        return self

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        logging.getLogger().removeHandler(self.errors)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(); a daemon thread must not raise
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.server = TestServer(
            create_app(self._settings, offline_resources=self._resources), host="127.0.0.1"
        )
        await self.server.start_server()
        self.inbox = TestServer(self._inbox_app(), host="127.0.0.1")
        await self.inbox.start_server()
        # No cookie jar: each request carries exactly the cookies the test gives it.
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.session.close()
            await self.server.close()
            await self.inbox.close()

    def _inbox_app(self) -> web.Application:
        """A channel's Bot Connector service: where /api/messages turns send their replies."""

        async def receive(request: web.Request) -> web.Response:
            await request.read()
            self.inbox_received += 1
            return web.json_response({"id": f"reply-{self.inbox_received}"})

        app = web.Application()
        # Any path: ids from the fuzz ("{}", "a/b" ...) make URLs a stricter route would refuse.
        app.router.add_route("*", "/{tail:.*}", receive)
        return app

    @property
    def inbox_url(self) -> str:
        assert self.inbox is not None
        return str(self.inbox.make_url("")).rstrip("/") + "/"

    # -- calls from the test's thread ---------------------------------------------------

    def call(self, coro: Awaitable[T], timeout_s: float = 60.0) -> T:
        """Runs `coro` on the app's loop and returns its result (TimeoutError past `timeout_s`)."""
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self.loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    @property
    def app(self) -> web.Application:
        assert self.server is not None
        return self.server.app

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port

    # -- requests ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> Answer:
        """One request with aiohttp's client; `path` is sent as given (already encoded)."""

        async def send() -> Answer:
            assert self.session is not None
            url = self.base_url + path
            kwargs: dict[str, Any] = {"headers": headers or {}, "params": params}
            if json_body is not None:
                kwargs["data"] = io.BytesIO(json.dumps(json_body).encode())
                kwargs["headers"] = {"Content-Type": "application/json", **kwargs["headers"]}
            elif data is not None:
                # A stream, not bytes: aiohttp warns about (and the suite's warning filter
                # fails on) large bytes bodies; the request is the same, Content-Length included.
                kwargs["data"] = io.BytesIO(data)
            async with self.session.request(
                method,
                aiohttp.client.URL(url, encoded=True),
                timeout=aiohttp.ClientTimeout(timeout_s),
                **kwargs,
            ) as resp:
                return Answer(
                    resp.status,
                    resp.content_type,
                    await resp.read(),
                    headers=dict(resp.headers),
                )

        answer = self.call(send(), timeout_s + 5)
        body = json_body if json_body is not None else data
        answer.request = (
            f"{method} {_short(path)} params={_short(params)} headers={_short(headers)} body={_short(body)}"
        )
        line = len(path) + sum(len(k) + len(v) + 2 for k, v in (params or {}).items()) * 3
        answer.over_parser_limits = line > PARSER_LIMIT or any(
            len(v.encode()) > PARSER_LIMIT for v in (headers or {}).values()
        )
        return answer

    def raw(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> Answer:
        """One HTTP/1.1 request written byte for byte (header values aiohttp's client would
        refuse or re-encode: invalid UTF-8, raw 0x80-0xff bytes)."""
        raw = self.call(raw_request(self.port, method, target, headers, body), 35)
        answer = Answer(raw.status, raw.content_type, raw.body, headers=raw.headers)
        answer.request = f"{method!r} {_short(target)} headers={_short(headers)} body={_short(body)}"
        return answer

    def settle(self, timeout_s: float = 60.0) -> None:
        """Waits until every Direct Line turn the app has started is over."""

        async def turns_done() -> None:
            turns = self.app[DIRECTLINE]._turns
            while turns:
                await asyncio.gather(*list(turns), return_exceptions=True)

        self.call(turns_done(), timeout_s)

    def health(self) -> None:
        """The server still answers, quickly."""
        answer = self.request("GET", "/healthz", timeout_s=10)
        assert answer.status == 200 and answer.json() == {"status": "ok"}, answer

    # -- what the app holds -------------------------------------------------------------

    def state_rows(self) -> list[tuple[str, str]]:
        """Every (key, body) of the state store, read through a second connection (WAL
        lets it read while the app writes)."""
        connection = sqlite3.connect(f"file:{self._settings.sqlite_path}?mode=ro", uri=True)
        try:
            return [(str(k), str(b)) for k, b in connection.execute("SELECT key, body FROM state")]
        finally:
            connection.close()

    def add_agent(self, name: str) -> None:
        self.call(Agents(self.app[STORES].state).add(name, PASSWORD, name.title()))

    def sign_in(self, name: str) -> tuple[str, str]:
        """Signs `name` in over HTTP; returns (session cookie value, CSRF token)."""
        answer = self.request("POST", "/agent/api/sign-in", json_body={"name": name, "password": PASSWORD})
        assert answer.status == 200, answer
        cookie = answer.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        return cookie, answer.json()["csrf"]

    def mint_token(self, conversation_id: str, user_id: str = "dl_fuzzer") -> str:
        """A token the app itself would accept, for any conversation id."""
        return str(self.app[DIRECTLINE].signer.issue(conversation_id, user_id))

    # -- a conversation that must still work after the fuzzing ---------------------------

    def conversation(self) -> DirectLineConversation:
        assert self.session is not None
        return self.call(start_conversation(self.session, self.base_url))

    def say(self, conversation: DirectLineConversation, text: str) -> str:
        return texts(self.call(say(conversation, text, within_s=30), 45))


class _ErrorLog(logging.Handler):
    """Every ERROR the app logs: a handler's or a turn's crash shows up here even when
    the client got a 2xx (a Direct Line turn runs after the answer; a failed
    /api/messages turn is apologised for and answered 201)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
            return  # a request that was not valid HTTP, answered 400 by aiohttp's parser
        self.records.append(record)

    def mark(self) -> int:
        return len(self.records)

    def since(self, mark: int) -> list[str]:
        return [_format_record(r) for r in self.records[mark:]]


def _format_record(record: logging.LogRecord) -> str:
    text = f"{record.name}: {record.getMessage()}"
    if record.exc_info and record.exc_info[1] is not None:
        text += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
    return text


def _not_json(constant: str) -> Any:
    raise AssertionError(f"{constant} is stored, which is not JSON")


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


# ----- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_name_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names other than loopback do not resolve. `loopback_only` refuses connections, but a
    reply to a junk `serviceUrl` would still ask DNS first; here it fails at once, the same
    way on every machine."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            loopback = ipaddress.ip_address(name.strip("[]")).is_loopback
        except ValueError:
            loopback = name == "localhost"
        if not loopback:
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no names but loopback, not {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(scope="module")
def live_app(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, offline_resources: OfflineResources
) -> Iterator[LiveApp]:
    """One app for the module, with a fresh copy of the shop's data. Rate limits are off:
    with them on, most of the fuzz would only ever reach the 429 in front of the handlers."""
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "aftercare.sqlite3"
    shutil.copyfile(sqlite_template, path)
    values: dict[str, Any] = {"SQLITE_PATH": path, "SEED_ON_START": False, "RATE_LIMITS": False}
    app = LiveApp(Settings(_env_file=None, **values), offline_resources).start()  # type: ignore[call-arg]
    yield app
    app.stop()


# ----- the end-of-module checks -----------------------------------------------------------


def assert_conversation_still_works(app: LiveApp) -> None:
    """A customer starts a conversation over Direct Line, is verified by email and gets
    an answer about their orders, as if nothing had happened."""
    app.health()
    conversation = app.conversation()
    verified = app.say(conversation, f"hi, my email is {NOAH_EMAIL}")
    assert "Noah" in verified, verified
    answered = app.say(conversation, "where is my order?")
    assert answered.strip(), "no answer after verification"
    assert "went wrong" not in answered and "went wrong" not in verified, answered


def assert_state_is_loadable(app: LiveApp) -> int:
    """Every document of the state store is JSON, and those the bot and the handoff desk
    read back load as they would on the next turn. Returns how many were checked."""
    rows = app.state_rows()
    assert rows, "the state store is empty"
    logs: dict[str, dict[int, dict[str, Any]]] = {}
    for key, body in rows:
        doc = json.loads(body, parse_constant=_not_json)  # strict JSON, nothing only Python reads
        assert isinstance(doc, dict), (key, body[:200])
        if "/conversations/" in key:  # BotBuilder's ConversationState: {channel}/conversations/{id}
            DialogState.model_validate(doc.get("dialog") or {})
        elif key.startswith("handoff/conversation/"):
            HandoffRecord.model_validate(doc)
        elif key == "handoff/index":
            QueueIndex.model_validate(doc)
        elif key.startswith("agent/session/"):
            Session.model_validate(doc)
        elif key == SIGNING_KEY_DOC:
            assert isinstance(doc.get("key"), str), key
        elif key.startswith("dl/"):
            conversation_id, _, index = key.removeprefix("dl/").rpartition("/")
            if conversation_id and index.isdigit():  # one logged activity
                assert doc.get("id") == f"{conversation_id}|{index}", (key, body[:200])
                assert isinstance(doc.get("type"), str), (key, body[:200])
                logs.setdefault(conversation_id, {})[int(index)] = doc
            else:  # a conversation's head
                assert isinstance(doc.get("user_id"), str), (key, body[:200])
    # Every Direct Line log is whole: its activities are numbered 0..n-1, no gaps.
    for conversation_id, activities in logs.items():
        assert sorted(activities) == list(range(len(activities))), f"a gap in the log of {conversation_id}"

    # And the bot's own loader reads every conversation state it wrote.
    async def load_all() -> None:
        storage = BotFrameworkStorage(app.app[STORES].state)
        keys = [key for key, _ in rows if "/conversations/" in key]
        for start in range(0, len(keys), 50):
            found = await storage.read(keys[start : start + 50])
            for key in keys[start : start + 50]:
                item = found[key]
                assert isinstance(item, dict) and "e_tag" in item, key
                DialogState.model_validate(item.get("dialog") or {})

    app.call(load_all(), 120)
    return len(rows)
