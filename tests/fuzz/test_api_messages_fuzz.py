"""Fuzzing `POST /api/messages` in anonymous local mode (no MicrosoftAppId): any body, any
content type, activities with a wrong type in every field, junk Authorization headers.

Never a 5xx, every refusal a JSON error, no turn that crashes (an ERROR in the app's log)
behind a 2xx, and afterwards the app still serves a whole conversation and its stored
state still loads.

One carve-out, from the Bot Framework protocol rather than from leniency: the answer to
an `invoke` activity is the bot's invoke response, whose status the adapter passes on as
the HTTP status; 501 there means "this bot does not handle that invoke" (BotBuilder's
`ActivityHandler` default) and is what Azure Bot Service expects to relay.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import (
    Answer,
    LiveApp,
    assert_conversation_still_works,
    assert_no_crash,
    assert_state_is_loadable,
    fuzz_settings,
)
from tests.fuzz.conftest import assert_well_formed as well_formed
from tests.fuzz.strategies import (
    activities,
    bodies,
    content_types,
    dumps,
    header_bytes,
    header_text,
    junk_values,
    typed_values,
)

# A failing example of a huge body would print a huge repr; that warning is not the failure.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

PATH = "/api/messages"


def base_activity(app: LiveApp, kind: str) -> dict[str, Any]:
    """A well-formed activity from a channel whose Bot Connector is the app's loopback inbox."""
    return {
        "type": kind,
        "id": "fuzz-1",
        "name": "aftercare/ping",
        "text": "where is my parcel?",
        "channelId": "emulator",
        "serviceUrl": app.inbox_url,
        "from": {"id": "fuzz-user", "role": "user"},
        "recipient": {"id": "bot", "role": "bot"},
        "conversation": {"id": "fuzz-conversation"},
    }


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _is_invoke(sent: Any) -> bool:
    return isinstance(sent, dict) and sent.get("type") == "invoke"


def check(app: LiveApp, answer: Answer, sent: Any, errors_before: int) -> None:
    if answer.status == 501 and _is_invoke(sent):
        answer.json()  # the invoke response's body, JSON (null when it has none)
    else:
        well_formed(answer)
    assert_no_crash(app, answer, errors_before)


def post(app: LiveApp, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> Answer:
    return app.request("POST", PATH, data=body, headers={"Content-Type": content_type, **(headers or {})})


def test_any_body_with_any_content_type(live_app: LiveApp) -> None:
    app = live_app
    base = base_activity(app, "event")

    @fuzz_settings(400)
    @given(body=bodies(activities(base)), content_type=content_types)
    def fuzz(body: bytes, content_type: str) -> None:
        mark = app.errors.mark()
        answer = post(app, body, content_type)
        check(app, answer, _parsed(body), mark)

    fuzz()
    app.health()


def test_activities_with_a_wrong_type_in_every_field(live_app: LiveApp) -> None:
    app = live_app
    events = activities(base_activity(app, "event"))
    messages = activities(base_activity(app, "message"))

    @fuzz_settings(400)
    # Text with an unpaired surrogate (JSON's "\ud800"): always tried first.
    @example(activity={**base_activity(app, "message"), "text": "\ud800"}, content_type="application/json")
    @given(activity=st.one_of(events, events, messages), content_type=st.just("application/json"))
    def fuzz(activity: Any, content_type: str) -> None:
        mark = app.errors.mark()
        answer = post(app, dumps(activity), content_type)
        check(app, answer, activity, mark)

    fuzz()
    app.health()


def test_any_json_value(live_app: LiveApp) -> None:
    app = live_app

    @fuzz_settings(300)
    @given(value=junk_values | typed_values)
    def fuzz(value: Any) -> None:
        mark = app.errors.mark()
        check(app, post(app, dumps(value), "application/json"), value, mark)

    fuzz()
    app.health()


def test_junk_authorization_headers(live_app: LiveApp) -> None:
    """Anonymous mode ignores credentials it cannot check, but none of them may crash it."""
    app = live_app
    activity = base_activity(app, "event")

    @fuzz_settings(200)
    @given(
        value=st.one_of(
            header_text,
            header_text.map(lambda t: "Bearer " + t),
            st.sampled_from(["Bearer", "Bearer ", "bearer x.y.z", "Basic Zm9vOmJhcg==", "Bearer a.b"]),
        )
    )
    def as_text(value: str) -> None:
        mark = app.errors.mark()
        answer = post(app, dumps(activity), "application/json", {"Authorization": value})
        check(app, answer, activity, mark)

    @fuzz_settings(150)
    @given(
        value=header_bytes, name=st.sampled_from([b"Authorization", b"Content-Type", b"X-Ms-Conversation-Id"])
    )
    def as_bytes(value: bytes, name: bytes) -> None:
        mark = app.errors.mark()
        headers = [(b"Content-Type", b"application/json")] if name != b"Content-Type" else []
        answer = app.raw(b"POST", PATH.encode(), [*headers, (name, value)], dumps(activity))
        well_formed(answer, protocol_level_400=True)
        assert_no_crash(app, answer, mark)

    as_text()
    as_bytes()
    app.health()


def test_after_the_fuzzing_a_conversation_still_works_and_the_state_loads(live_app: LiveApp) -> None:
    """Runs last in this module (pytest keeps the file's order): the same app, after
    everything above was thrown at it."""
    assert_conversation_still_works(live_app)
    assert assert_state_is_loadable(live_app) > 0
