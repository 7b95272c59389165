"""Fuzzing the agent console's JSON API: sign-in with any body, every POST with junk
bodies and missing, forged or real CSRF tokens and session cookies, any conversation id
in the paths (percent-encoded junk), raw bytes in the Cookie, CSRF and Origin headers.

Never a 5xx, every refusal a JSON error, nothing changed without the session's cookie
and CSRF token, no crash in the log, and afterwards the console and a customer's
conversation still work and every stored document still loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import (
    LiveApp,
    assert_conversation_still_works,
    assert_no_crash,
    assert_state_is_loadable,
    assert_well_formed,
    fuzz_settings,
)
from tests.fuzz.strategies import (
    bodies,
    content_types,
    dumps,
    header_bytes,
    header_text,
    huge_text,
    junk_ids,
    junk_values,
    path_segment,
)
from tests.handoff.conftest import PASSWORD, waiting_for_a_person

# A failing example of a huge body would print a huge repr; that warning is not the failure.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

API = "/agent/api"
AGENT = "alex"


@dataclass
class Console:
    cookie: str
    csrf: str
    queued_id: str  # a conversation waiting for a person, so some junk lands on a real one

    @property
    def session_header(self) -> str:
        return f"aftercare_agent={self.cookie}"


@pytest.fixture(scope="module")
def console(live_app: LiveApp) -> Console:
    live_app.add_agent(AGENT)
    cookie, csrf = live_app.sign_in(AGENT)
    assert live_app.session is not None
    conversation, _ = live_app.call(waiting_for_a_person(live_app.session, live_app.base_url), 60)
    return Console(cookie, csrf, conversation.conversation_id)


def test_sign_in_with_any_body(live_app: LiveApp, console: Console) -> None:
    app = live_app
    credentials = st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from([AGENT, "ALEX ", "alex\x00", ""]) | junk_values,
            "password": st.sampled_from([PASSWORD, PASSWORD + " ", ""]) | junk_values,
        },
    )

    # Each well-typed attempt costs an argon2 verification (tens of ms of CPU): fewer examples.
    @fuzz_settings(150)
    @given(
        body=st.one_of(credentials.map(dumps), bodies(credentials)),
        content_type=st.just("application/json") | content_types,
        origin=st.none() | st.just(app.base_url) | header_text,
    )
    def fuzz(body: bytes, content_type: str, origin: str | None) -> None:
        mark = app.errors.mark()
        headers = {"Content-Type": content_type}
        if origin is not None:
            headers["Origin"] = origin
        answer = app.request("POST", f"{API}/sign-in", data=body, headers=headers)
        assert_well_formed(answer)
        assert_no_crash(app, answer, mark)
        if answer.status == 200:  # only the right password signs in, and only as its agent
            assert json.loads(body)["password"] == PASSWORD, answer.request
            assert answer.json()["agent"] == AGENT

    fuzz()
    app.health()


def test_agent_messages_with_any_text(live_app: LiveApp, console: Console) -> None:
    """The agent holds the queued conversation and sends anything as a message: the
    text goes into the handoff record and the customer's Direct Line log."""
    app = live_app
    headers = {"Cookie": console.session_header, "X-CSRF-Token": console.csrf}
    path = f"{API}/conversations/{path_segment(console.queued_id)}"
    claimed = app.request("POST", f"{path}/claim", json_body={}, headers=headers)
    assert claimed.status == 200, claimed

    @fuzz_settings(150)
    # An unpaired surrogate (JSON's "\ud800"): always tried first.
    @example(body={"text": "\ud800"})
    @given(
        body=st.fixed_dictionaries({"text": st.text() | junk_values | huge_text(100, 1_000)}) | junk_values
    )
    def fuzz(body: object) -> None:
        mark = app.errors.mark()
        answer = app.request("POST", f"{path}/messages", data=dumps(body), headers=headers)
        assert_well_formed(answer)
        assert_no_crash(app, answer, mark, settle=True)

    fuzz()
    app.health()


ACTIONS = ["claim", "messages", "hand-back", "close"]


def test_every_post_with_junk_bodies_ids_and_csrf_tokens(live_app: LiveApp, console: Console) -> None:
    app = live_app
    message_bodies = st.fixed_dictionaries({}, optional={"text": junk_values | st.text(max_size=50)})

    @fuzz_settings(600)
    @given(
        action=st.sampled_from([*ACTIONS, "sign-out"]),
        raw_id=junk_ids | st.just(console.queued_id),
        body=st.one_of(bodies(message_bodies), st.just(b"{}")),
        content_type=st.just("application/json") | content_types,
        csrf=st.sampled_from(["real", "missing", "empty"]) | header_text,
        cookie=st.sampled_from(["real", "missing"]) | header_text,
        origin=st.sampled_from([None, "same"]) | header_text,
    )
    def fuzz(
        action: str, raw_id: str, body: bytes, content_type: str, csrf: str, cookie: str, origin: str | None
    ) -> None:
        if action == "sign-out" and csrf == "real" and cookie == "real":
            csrf = "forged"  # signing the fuzzer's own session out would end the fuzz
        mark = app.errors.mark()
        headers = {"Content-Type": content_type}
        if csrf != "missing":
            headers["X-CSRF-Token"] = {"real": console.csrf, "empty": ""}.get(csrf, csrf)
        if cookie != "missing":
            headers["Cookie"] = console.session_header if cookie == "real" else f"aftercare_agent={cookie}"
        if origin is not None:
            headers["Origin"] = app.base_url if origin == "same" else origin
        path = (
            f"{API}/sign-out"
            if action == "sign-out"
            else f"{API}/conversations/{path_segment(raw_id)}/{action}"
        )
        answer = app.request("POST", path, data=body, headers=headers)
        assert_well_formed(answer)
        assert_no_crash(app, answer, mark)
        authorised = csrf == "real" and cookie == "real" and origin in (None, "same")
        if not authorised:
            assert answer.status >= 400, (
                f"changed without the session's cookie and CSRF token: {answer.request}"
            )

    fuzz()
    app.health()


def test_reads_with_junk_ids_and_forged_sessions(live_app: LiveApp, console: Console) -> None:
    app = live_app

    @fuzz_settings(400)
    @given(
        target=st.one_of(
            junk_ids.map(lambda raw: f"{API}/conversations/{path_segment(raw)}"),
            st.sampled_from(
                [f"{API}/me", f"{API}/queue", f"{API}/canned", f"{API}/conversations/{console.queued_id}"]
            ),
        ),
        cookie=st.just("real") | header_text,
    )
    def fuzz(target: str, cookie: str) -> None:
        mark = app.errors.mark()
        value = console.session_header if cookie == "real" else f"aftercare_agent={cookie}"
        answer = app.request("GET", target, headers={"Cookie": value})
        assert_well_formed(answer)
        assert_no_crash(app, answer, mark)
        if cookie != "real":
            # 404: an id with "{", "}" or "/" matches no route at all (aiohttp's default
            # pattern for a path part), so no handler, and no session check, is reached.
            assert answer.status in (401, 404) or answer.over_parser_limits, answer.request

    fuzz()
    app.health()


def test_raw_bytes_in_cookie_csrf_and_origin_headers(live_app: LiveApp, console: Console) -> None:
    app = live_app
    claim = f"{API}/conversations/{path_segment('no-such-conversation')}/claim".encode()

    @fuzz_settings(250)
    @example(header=b"Cookie", value=b"\x80", target=(b"GET", f"{API}/me".encode()))
    @example(header=b"X-CSRF-Token", value=b"\x80", target=(b"POST", claim))
    @given(
        header=st.sampled_from([b"Cookie", b"X-CSRF-Token", b"Origin"]),
        value=header_bytes,
        target=st.sampled_from(
            [(b"GET", f"{API}/me".encode()), (b"POST", claim), (b"POST", f"{API}/sign-in".encode())]
        ),
    )
    def fuzz(header: bytes, value: bytes, target: tuple[bytes, bytes]) -> None:
        mark = app.errors.mark()
        headers = [(b"Content-Type", b"application/json")]
        if header == b"Cookie":
            headers.append((b"Cookie", b"aftercare_agent=" + value))
        else:
            headers += [(b"Cookie", console.session_header.encode()), (header, value)]
            if header != b"X-CSRF-Token":
                headers.append((b"X-CSRF-Token", console.csrf.encode()))
        answer = app.raw(target[0], target[1], headers, b"{}")
        assert_well_formed(answer, protocol_level_400=True)
        assert_no_crash(app, answer, mark)

    fuzz()
    app.health()


def test_after_the_fuzzing_the_console_and_a_conversation_still_work(
    live_app: LiveApp, console: Console
) -> None:
    """Runs last in this module (pytest keeps the file's order)."""
    app = live_app
    me = app.request("GET", f"{API}/me", headers={"Cookie": console.session_header})
    queue = app.request("GET", f"{API}/queue", headers={"Cookie": console.session_header})
    assert me.status == 200 and me.json()["agent"] == AGENT, me
    assert queue.status == 200 and isinstance(queue.json()["queue"], list), queue
    assert_conversation_still_works(app)
    assert assert_state_is_loadable(app) > 0
