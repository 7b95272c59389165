"""A long message of one "word" (a run of letters, digits, dots, pluses or dashes with no
space) must not stall the app: its turn ends within a few seconds and the server keeps
answering, on both ways in for a customer's text (Direct Line and /api/messages).

This has its own app because, while the property fails, one such message blocks the
app's event loop (the bot's turn runs on it) for as long as the turn takes: every other
test sharing the app would time out behind it. There is no shrinking phase for the same
reason: a timing failure leaves the loop busy, so any smaller input tried right after it
would time out as well and the "minimal" example would be noise. The sizes drawn are far
below the 256 KB body limit (a well-behaved turn on 240 KB of ordinary words takes about
a second here).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import (
    LiveApp,
    assert_conversation_still_works,
    assert_state_is_loadable,
    assert_well_formed,
    fuzz_settings,
)
from tests.fuzz.strategies import path_segment
from tests.support.directline import DirectLineConversation

pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

# A turn's time budget, generous for the sizes drawn below.
TURN_BUDGET_S = 2.5

# 16,000 to 24,000 characters of one repeated unit: a turn that is linear in the text takes
# a small fraction of a second on that; one that is quadratic takes several seconds.
long_words = st.builds(
    lambda unit, length: (unit * length)[:length],
    st.sampled_from(["x", "a.", "0", "_-", "é", "a+b", "W1"]),
    st.integers(16_000, 24_000),
)


@pytest.fixture(scope="module")
def conversation(live_app: LiveApp) -> DirectLineConversation:
    conversation = live_app.conversation()
    live_app.settle()
    return conversation


@settings(fuzz_settings(4), phases=[Phase.explicit, Phase.generate])
@given(text=long_words, route=st.sampled_from(["directline", "api/messages"]))
def test_a_long_word_does_not_stall_the_server(
    live_app: LiveApp, conversation: DirectLineConversation, text: str, route: str
) -> None:
    app = live_app
    if route == "directline":
        path = f"/v3/directline/conversations/{path_segment(conversation.conversation_id)}/activities"
        answer = app.request(
            "POST", path, json_body={"type": "message", "text": text}, headers=conversation.headers
        )
        assert_well_formed(answer)
        try:
            app.settle(TURN_BUDGET_S)
        except TimeoutError:
            raise AssertionError(
                f"the Direct Line turn for a {len(text)}-character word ({text[:12]!r}...) took over "
                f"{TURN_BUDGET_S} s, blocking the app's event loop"
            ) from None
    else:
        activity = {
            "type": "message",
            "id": "long-1",
            "text": text,
            "channelId": "emulator",
            "serviceUrl": app.inbox_url,
            "from": {"id": "fuzz-user", "role": "user"},
            "recipient": {"id": "bot", "role": "bot"},
            "conversation": {"id": "long-words"},
        }
        try:
            answer = app.request(
                "POST",
                "/api/messages",
                data=json.dumps(activity).encode(),
                headers={"Content-Type": "application/json"},
                timeout_s=TURN_BUDGET_S,
            )
        except TimeoutError:
            raise AssertionError(
                f"/api/messages did not answer a {len(text)}-character word ({text[:12]!r}...) within "
                f"{TURN_BUDGET_S} s, its turn blocking the app's event loop"
            ) from None
        assert_well_formed(answer)
    app.health()


def test_after_the_long_words_a_conversation_still_works_and_the_state_loads(live_app: LiveApp) -> None:
    """Runs last in this module (pytest keeps the file's order)."""
    live_app.settle(600)  # a stalled turn from above finishes first
    assert_conversation_still_works(live_app)
    assert assert_state_is_loadable(live_app) > 0
