"""Fuzzing the local Direct Line 3.0 channel: the token routes, starting and reconnecting
to conversations, posting any activity body with a valid token, polling with any
watermark, forged and garbled tokens, raw header bytes, and the Bot Connector endpoint.

Never a 5xx, every refusal a JSON error, no forged token ever let in, no turn that
crashes behind a 2xx (each posted activity's turn is awaited, so a crash is pinned to the
input that caused it), and afterwards a customer still gets verified and answered and
every stored document still loads.
"""

from __future__ import annotations

import jwt
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.service import DIRECTLINE
from tests.fuzz.conftest import (
    Answer,
    LiveApp,
    assert_conversation_still_works,
    assert_no_crash,
    assert_state_is_loadable,
    assert_well_formed,
    fuzz_settings,
)
from tests.fuzz.strategies import (
    activities,
    bodies,
    content_types,
    forged_tokens,
    header_bytes,
    header_text,
    junk_ids,
    junk_values,
    path_segment,
)
from tests.support.directline import DirectLineConversation

# A failing example of a huge body would print a huge repr; that warning is not the failure.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

DL = "/v3/directline"


# Valid JSON that Python reads but the store's JSON writer (orjson) refuses: an integer
# past 64 bits, an unpaired surrogate, nesting past 254 levels. Always tried first.
STORE_BREAKERS = [
    b'{"type": "message", "text": "hi", "value": 18446744073709551616}',
    b'{"type": "message", "text": "\\ud800"}',
    b'{"type": "message", "value": ' + b"[" * 254 + b"]" * 254 + b"}",
]


def checked(app: LiveApp, answer: Answer, mark: int) -> Answer:
    assert_well_formed(answer)
    assert_no_crash(app, answer, mark, settle=True)
    return answer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_of(app: LiveApp) -> bytes:
    return bytes(app.app[DIRECTLINE].signer._key)


def is_genuine(app: LiveApp, token: str) -> bool:
    """Whether the app could have issued `token`: its key, its issuer, string ids, unexpired."""
    try:
        claims = jwt.decode(
            token,
            key_of(app),
            algorithms=["HS256"],
            issuer="aftercare-directline",
            options={"require": ["exp", "conv", "user", "iss"]},
        )
    except Exception:
        return False
    return isinstance(claims.get("conv"), str) and isinstance(claims.get("user"), str)


@pytest.fixture(scope="module")
def conversation(live_app: LiveApp) -> DirectLineConversation:
    """The conversation the activity fuzz posts into (started before any fuzzing)."""
    return live_app.conversation()


# ----- tokens -------------------------------------------------------------------------------

user_bodies = st.fixed_dictionaries(
    {}, optional={"user": junk_values | st.fixed_dictionaries({"id": junk_values})}
)


def test_tokens_generate_with_any_body(live_app: LiveApp) -> None:
    app = live_app

    @fuzz_settings(300)
    @example(body=b'{"user": {"id": "\\ud800"}}', content_type="application/json", authorization=None)
    @given(
        body=st.one_of(bodies(user_bodies), st.just(b"")),
        content_type=content_types,
        authorization=st.none() | header_text,
    )
    def fuzz(body: bytes, content_type: str, authorization: str | None) -> None:
        mark = app.errors.mark()
        headers = {"Content-Type": content_type}
        if authorization is not None:
            headers["Authorization"] = authorization
        answer = checked(app, app.request("POST", f"{DL}/tokens/generate", data=body, headers=headers), mark)
        if answer.status == 200:
            grant = answer.json()
            # The grant it answered works: the conversation starts.
            started = app.request("POST", f"{DL}/conversations", headers=bearer(grant["token"]))
            checked(app, started, mark)
            assert started.status == 201, started

    fuzz()
    app.health()


def test_forged_tokens_are_refused_everywhere(
    live_app: LiveApp, conversation: DirectLineConversation
) -> None:
    app = live_app
    own = path_segment(conversation.conversation_id)
    routes = [
        ("POST", f"{DL}/tokens/refresh"),
        ("POST", f"{DL}/conversations"),
        ("GET", f"{DL}/conversations/{own}"),
        ("GET", f"{DL}/conversations/{own}/activities"),
        ("POST", f"{DL}/conversations/{own}/activities"),
    ]

    @fuzz_settings(500)
    @given(
        token=forged_tokens(key_of(app)),
        route=st.sampled_from(routes),
        scheme=st.sampled_from(["Bearer ", "bearer ", "Bearer  "]),
    )
    def fuzz(token: str, route: tuple[str, str], scheme: str) -> None:
        mark = app.errors.mark()
        method, path = route
        body = (
            {"type": "message", "text": "hello"}
            if path.endswith("/activities") and method == "POST"
            else None
        )
        answer = checked(
            app, app.request(method, path, json_body=body, headers={"Authorization": scheme + token}), mark
        )
        if not is_genuine(app, token):
            assert answer.status in (401, 403), f"a forged token got {answer.status}: {answer.request}"

    fuzz()
    app.health()


def test_raw_bytes_in_the_authorization_header(
    live_app: LiveApp, conversation: DirectLineConversation
) -> None:
    app = live_app
    own = path_segment(conversation.conversation_id).encode()
    targets = [
        (b"POST", f"{DL}/tokens/refresh".encode()),
        (b"POST", f"{DL}/conversations".encode()),
        (b"GET", f"{DL}/conversations/".encode() + own + b"/activities"),
        (b"GET", f"{DL}/conversations/".encode() + own + b"/stream?t=x"),
    ]

    @fuzz_settings(200)
    @example(value=b"\x80", prefix=b"Bearer ", target=targets[0])
    @given(
        value=header_bytes,
        prefix=st.sampled_from([b"", b"Bearer ", b"Bearer " + conversation.token.encode()]),
        target=st.sampled_from(targets),
    )
    def fuzz(value: bytes, prefix: bytes, target: tuple[bytes, bytes]) -> None:
        mark = app.errors.mark()
        answer = app.raw(target[0], target[1], [(b"Authorization", prefix + value)])
        assert_well_formed(answer, protocol_level_400=True)
        assert_no_crash(app, answer, mark, settle=True)

    fuzz()
    app.health()


# ----- conversations -------------------------------------------------------------------------

watermarks = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.integers(min_value=10**18, max_value=10**400).map(str),
    st.text(max_size=20),
    st.sampled_from(["", " 1", "1_0", "٣", "0x10", "1e3", "-1", "-2", "9" * 5000, "+5", "NaN"]),
)


def test_reconnect_and_poll_with_junk_ids_and_watermarks(
    live_app: LiveApp, conversation: DirectLineConversation
) -> None:
    app = live_app

    @fuzz_settings(500)
    @given(
        raw_id=junk_ids | st.just(conversation.conversation_id),
        watermark=st.none() | watermarks,
        which_token=st.sampled_from(["own", "minted", "none"]),
        suffix=st.sampled_from(["", "/activities", "/stream"]),
    )
    def fuzz(raw_id: str, watermark: str | None, which_token: str, suffix: str) -> None:
        mark = app.errors.mark()
        tokens = {"own": conversation.token, "minted": app.mint_token(raw_id), "none": ""}
        headers = bearer(tokens[which_token]) if tokens[which_token] else {}
        params = {} if watermark is None else {"watermark": watermark}
        if suffix == "/stream":
            params["t"] = tokens[which_token]
        answer = app.request(
            "GET", f"{DL}/conversations/{path_segment(raw_id)}{suffix}", headers=headers, params=params
        )
        checked(app, answer, mark)

    fuzz()
    app.health()


def test_post_any_activity_with_a_valid_token(
    live_app: LiveApp, conversation: DirectLineConversation
) -> None:
    app = live_app
    path = f"{DL}/conversations/{path_segment(conversation.conversation_id)}/activities"
    base = {
        "type": "message",
        "text": "where is my parcel?",
        "from": {"id": "webchat-user", "role": "user"},
        "channelData": {"clientActivityID": "client-1"},
    }

    @fuzz_settings(400)
    @example(body=STORE_BREAKERS[0], content_type="application/json")
    @example(body=STORE_BREAKERS[1], content_type="application/json")
    @example(body=STORE_BREAKERS[2], content_type="application/json")
    @given(body=bodies(activities(base)), content_type=st.just("application/json") | content_types)
    def fuzz(body: bytes, content_type: str) -> None:
        mark = app.errors.mark()
        headers = {**conversation.headers, "Content-Type": content_type}
        checked(app, app.request("POST", path, data=body, headers=headers), mark)

    fuzz()
    app.health()


def test_get_activities_with_any_watermark(live_app: LiveApp, conversation: DirectLineConversation) -> None:
    app = live_app
    path = f"{DL}/conversations/{path_segment(conversation.conversation_id)}/activities"

    @fuzz_settings(300)
    @given(watermark=watermarks)
    def fuzz(watermark: str) -> None:
        mark = app.errors.mark()
        answer = checked(
            app, app.request("GET", path, headers=conversation.headers, params={"watermark": watermark}), mark
        )
        if answer.status == 200:
            body = answer.json()
            assert isinstance(body["activities"], list) and body["watermark"].lstrip("-").isdigit(), body

    fuzz()
    app.health()


def test_connector_endpoint_with_any_body(live_app: LiveApp, conversation: DirectLineConversation) -> None:
    """`/v3/conversations/...`: where a bot in another process on this machine posts."""
    app = live_app
    base = {"type": "message", "text": "a proactive note", "from": {"id": "bot", "role": "bot"}}

    @fuzz_settings(300)
    @example(body=STORE_BREAKERS[0], raw_id=conversation.conversation_id, reply_to=None)
    @given(
        body=bodies(activities(base)),
        raw_id=st.just(conversation.conversation_id) | junk_ids,
        reply_to=st.none() | junk_ids,
    )
    def fuzz(body: bytes, raw_id: str, reply_to: str | None) -> None:
        mark = app.errors.mark()
        path = f"/v3/conversations/{path_segment(raw_id)}/activities"
        if reply_to is not None:
            path += "/" + path_segment(reply_to)
        answer = app.request("POST", path, data=body, headers={"Content-Type": "application/json"})
        checked(app, answer, mark)

    fuzz()
    app.health()


def test_after_the_fuzzing_a_conversation_still_works_and_the_state_loads(
    live_app: LiveApp, conversation: DirectLineConversation
) -> None:
    """Runs last in this module (pytest keeps the file's order)."""
    assert_conversation_still_works(live_app)
    # The conversation that took every junk activity still reads back whole.
    answer = live_app.request(
        "GET",
        f"{DL}/conversations/{path_segment(conversation.conversation_id)}/activities",
        headers=conversation.headers,
    )
    assert answer.status == 200, answer
    assert [a["id"] for a in answer.json()["activities"]] == sorted(
        a["id"] for a in answer.json()["activities"]
    )
    assert assert_state_is_loadable(live_app) > 0
