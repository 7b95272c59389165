"""Fuzzing the phone channel's WebSocket (`/api/voice`): calls that send junk frames of
every kind (not JSON, binary, ACS messages with fields of the wrong type, audio that is
not base64 or not whole samples, metadata with any rate, channel count or encoding, keys
that are not keys) among real ones.

Never a crash: no error in the app's log, every call ends with a clean close (1000, or
1003 for a socket that sends only junk), never 1011; afterwards no call is left open,
every stored document still loads, and a real call is still greeted.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
from hypothesis import example, given
from hypothesis import strategies as st

from bot.service import VOICE
from tests.fuzz.conftest import LiveApp, assert_state_is_loadable, fuzz_settings
from tests.fuzz.strategies import any_text, edge_scalars, json_scalars

KINDS = ["AudioMetadata", "AudioData", "DtmfData", "audiometadata", "AUDIODATA", "StopAudio", "Transcription"]
junk = (
    json_scalars
    | edge_scalars
    | st.lists(json_scalars, max_size=3)
    | st.dictionaries(any_text, json_scalars, max_size=3)
)
pcm = st.binary(max_size=1300)


def _frame(kind: Any, body_name: str, body: Any) -> str:
    return json.dumps({"kind": kind, body_name: body})


metadata = st.fixed_dictionaries(
    {},
    optional={
        "sampleRate": st.sampled_from([16000, 24000, 8000, 48000, 44100, 0, -1, 10**9]) | junk,
        "channels": st.sampled_from([1, 2, 0, 8]) | junk,
        "encoding": st.sampled_from(["PCM", "pcm", "OPUS", ""]) | junk,
        "length": junk,
    },
).map(lambda body: _frame("AudioMetadata", "audioMetadata", body))
audio = st.one_of(
    pcm.map(
        lambda raw: _frame(
            "AudioData", "audioData", {"data": base64.b64encode(raw).decode(), "silent": False}
        )
    ),
    junk.map(lambda data: _frame("AudioData", "audioData", {"data": data})),
    any_text.map(lambda data: _frame("AudioData", "audioData", {"data": data})),
)
keys = (st.text("0123456789*#ABCD", max_size=12) | any_text | junk).map(
    lambda data: _frame("DtmfData", "dtmfData", {"data": data})
)
shaped = st.builds(
    _frame,
    st.sampled_from(KINDS) | junk,
    st.sampled_from(["audioData", "audioMetadata", "dtmfData", "x"]),
    junk,
)
# A WebSocket text frame is UTF-8: a lone surrogate cannot be sent as text (it goes as escapes).
text_frames = (
    metadata
    | audio
    | keys
    | shaped
    | any_text.map(lambda text: text.encode("utf-8", "replace").decode("utf-8"))
    | junk.map(json.dumps)
)
frames = st.lists(
    text_frames.map(lambda t: ("text", t)) | st.binary(max_size=600).map(lambda b: ("binary", b)),
    min_size=1,
    max_size=25,
)


async def _call(app: LiveApp, sent: list[tuple[str, Any]]) -> int | None:
    assert app.session is not None
    async with app.session.ws_connect(f"{app.base_url}/api/voice?caller=%2B15550199999") as ws:
        try:
            for kind, data in sent:
                if kind == "text":
                    await ws.send_str(data)
                else:
                    await ws.send_bytes(data)
        except ConnectionError:
            pass  # the app closed a socket sending only junk: that is the point
        await ws.close()
        return ws.close_code


@given(frames)
@fuzz_settings(40)
@example([("text", "not json")] * 60)
@example(
    [("text", _frame("AudioMetadata", "audioMetadata", {"sampleRate": 24000}))] + [("binary", b"\x01")] * 3
)
def test_junk_frames_end_calls_cleanly_and_crash_nothing(
    live_app: LiveApp, sent: list[tuple[str, Any]]
) -> None:
    errors_before = live_app.errors.mark()
    code = live_app.call(_call(live_app, sent), 60)
    assert code in (None, 1000, 1003), f"the call closed with {code} after {sent[:5]!r}"
    live_app.call(_calls_ended(live_app), 30)
    crashed = live_app.errors.since(errors_before)
    assert not crashed, "\n".join(crashed)


async def _calls_ended(app: LiveApp) -> None:
    for _ in range(1500):  # a call ends when its socket does; polled, the channel has no event for it
        if not app.app[VOICE].calls:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"calls still open: {list(app.app[VOICE].calls)}")


def test_after_the_fuzz_a_real_call_is_greeted(live_app: LiveApp) -> None:
    async def greeted() -> bool:
        assert live_app.session is not None
        async with live_app.session.ws_connect(f"{live_app.base_url}/api/voice?caller=%2B15550100000") as ws:
            await ws.send_str(_frame("AudioMetadata", "audioMetadata", {"sampleRate": 16000, "channels": 1}))
            async with asyncio.timeout(30):
                async for message in ws:
                    if (
                        message.type == aiohttp.WSMsgType.TEXT
                        and json.loads(message.data).get("Kind") == "AudioData"
                    ):
                        return True
        return False

    assert live_app.call(greeted(), 60)
    assert assert_state_is_loadable(live_app) > 0
