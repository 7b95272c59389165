"""Bad input on the phone channel: garbage frames, audio formats the app does or does not
take, a line that goes quiet, callers hanging up mid-turn, a full house. Each call ends
cleanly with a close code that says why, gives back what it borrowed (its recognizer,
its tasks, threads), logs nothing at ERROR, and the other calls carry on.

The bot's audio plays out in real time, so these tests speak over it (barge-in) and
check that an answer started rather than listening to it end."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from scipy.signal import resample_poly

from bot.channels.acs_media import MAX_FRAME_BYTES
from bot.channels.voice import MAX_BAD_FRAMES, Call, TurnTiming, VoiceChannel
from bot.service import VOICE, create_app
from bot.settings import Settings
from dialogs import OfflineResources
from providers.speech import SpeechToText, TextToSpeech
from providers.speech.audio import float_to_pcm, pcm_to_float
from providers.speech.stack import SpeechStack
from tests.voice.caller import SILENCE, ScriptedCaller, audio_frame, keys_frame

Serve = Callable[..., Awaitable[TestServer]]

# Frames no ACS client sends, one of each kind of wrong (the oversized one has its own test).
GARBAGE: list[str | bytes] = [
    "this is not JSON",
    b"\x00\xff\x13\x37 binary junk",
    json.dumps([1, 2, 3]),
    json.dumps({"kind": "AudioData", "audioData": "not an object"}),
    json.dumps({"audioData": {"data": "AAAA"}}),
    json.dumps({"kind": "AudioData", "audioData": {"data": "*** not base64 ***"}}),
    json.dumps({"kind": "DtmfData", "dtmfData": {"data": "12x"}}),
    json.dumps({"kind": "AudioMetadata", "audioMetadata": {"sampleRate": "fast"}}),
]
# Well-formed, but not what the app is for: taken without complaint.
HARMLESS: list[str] = [
    audio_frame(b"\x01\x00\x02"),  # an odd number of PCM bytes
    json.dumps({"kind": "TranscriptionData", "transcriptionData": {"text": "hello"}}),
]


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
async def serve(
    make_settings: Callable[..., Settings], offline_resources: OfflineResources, speech_stack: SpeechStack
) -> AsyncIterator[Serve]:
    """Starts the app with settings of the test's choosing (one server per test)."""
    servers: list[TestServer] = []

    async def serve(**overrides: Any) -> TestServer:
        app = create_app(make_settings(**overrides), offline_resources=offline_resources, speech=speech_stack)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        await server.close()


class Phone:
    """Places calls as ACS does, each named so the test finds its `Call` on the server."""

    def __init__(self, session: aiohttp.ClientSession, voice: TextToSpeech) -> None:
        self.session = session
        self.voice = voice
        self.callers: list[ScriptedCaller] = []

    async def call(
        self, server: TestServer, name: str, *, sample_rate: int = 16_000, open_line: bool = True
    ) -> ScriptedCaller:
        ws = await self.session.ws_connect(
            server.make_url("/api/voice?caller=%2B15550100123"),
            headers={"x-ms-call-connection-id": name},
        )
        caller = ScriptedCaller(ws, self.voice)
        self.callers.append(caller)
        await caller.start(sample_rate, open_line=open_line)
        return caller

    async def hang_up_all(self) -> None:
        for caller in self.callers:
            if not caller.ws.closed:
                await caller.hang_up()


@pytest.fixture
async def phone(caller_voice: TextToSpeech) -> AsyncIterator[Phone]:
    async with aiohttp.ClientSession() as session:
        phone = Phone(session, caller_voice)
        yield phone
        await phone.hang_up_all()


@pytest.fixture
async def stt(speech_stack: SpeechStack) -> SpeechToText:
    return (await speech_stack.ready())[0]


async def eventually(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        # Decided before yielding: on a loaded machine the loop may come back late, and the
        # tasks that make `check` true deserve their turn before the test gives up.
        expired = time.monotonic() > deadline
        await asyncio.sleep(0.05)
        if expired and not check():
            raise AssertionError(f"not within {timeout_s} s: {what}")


def voice_of(server: TestServer) -> VoiceChannel:
    return server.app[VOICE]


def call_on(server: TestServer, name: str) -> Call:
    return voice_of(server).calls[f"voice-{name}"]


async def close_code(caller: ScriptedCaller, timeout_s: float = 10.0) -> int | None:
    """How the server ended the call (the caller waits for it to)."""
    await asyncio.wait_for(caller.closed.wait(), timeout_s)
    return caller.ws.close_code


async def released(server: TestServer, stt: SpeechToText, lent_before: int = 0) -> None:
    """Every call is over on the server, and its recognizer is back in the pool."""
    await eventually(
        lambda: not voice_of(server).calls and stt.calls_in_progress == lent_before,
        10.0,
        "the calls released",
    )


async def answered(call: Call, turns_before: int, timeout_s: float = 60.0) -> TurnTiming:
    """The caller's next turn, once the bot's answer to it has started to play."""
    await eventually(
        lambda: any(t.first_audio_at is not None for t in call.stats.timings[turns_before:]),
        timeout_s,
        "an answer to what the caller said",
    )
    return next(t for t in call.stats.timings[turns_before:] if t.first_audio_at is not None)


def bytes_heard(caller: ScriptedCaller) -> int:
    """All the bot's audio the caller received, what a StopAudio cut included."""
    return sum(caller.heard.cut) + len(caller.heard.audio)


async def say_and_get_an_answer(
    caller: ScriptedCaller, call: Call, pcm: bytes, timeout_s: float = 60.0
) -> TurnTiming:
    """Says `pcm` (then a second of silence); answers the turn once the caller hears the reply."""
    turns_before, heard_before = len(call.stats.timings), bytes_heard(caller)
    await caller.send_audio(pcm + SILENCE * 50)
    turn = await answered(call, turns_before, timeout_s)
    await eventually(lambda: bytes_heard(caller) > heard_before, 10.0, "the answer's audio")
    return turn


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def child_processes() -> list[int]:
    """Processes this one started (psutil-free: each /proc/<pid>/stat names its parent);
    `multiprocessing.active_children()` would miss a subprocess."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # it ended meanwhile
            # "pid (name) state ppid ...": the name may hold spaces, so split after it.
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                children.append(int(entry))
    return children


@pytest.fixture
async def yes(caller_voice: TextToSpeech) -> bytes:
    return b"".join([chunk async for chunk in caller_voice.speak("Yes.")])


# -- garbage ----------------------------------------------------------------------------


async def test_garbage_frames_are_counted_and_the_call_goes_on(
    serve: Serve, phone: Phone, stt: SpeechToText, yes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    server = await serve()
    caller = await phone.call(server, "garbage")
    call = call_on(server, "garbage")
    await eventually(lambda: caller.heard.first_audio_at is not None, 30.0, "the greeting")

    for frame in GARBAGE:
        await (caller.ws.send_bytes(frame) if isinstance(frame, bytes) else caller.ws.send_str(frame))
    for frame in HARMLESS:
        await caller.ws.send_str(frame)

    turn = await say_and_get_an_answer(caller, call, yes)
    assert turn.text
    assert caller.heard.stops, "the caller spoke over the greeting: the bot stopped it"
    assert call.stats.bad_frames == len(GARBAGE)
    assert not caller.ws.closed
    await caller.hang_up()
    await released(server, stt)
    assert not errors(caplog)


async def test_only_garbage_ends_the_call_with_1003(
    serve: Serve, phone: Phone, stt: SpeechToText, caplog: pytest.LogCaptureFixture
) -> None:
    server = await serve()
    # No silence between the frames: nothing but garbage comes down this line.
    caller = await phone.call(server, "garbage-only", open_line=False)
    for index in range(MAX_BAD_FRAMES + 10):
        if caller.ws.closed:
            break
        with_reason = GARBAGE[index % len(GARBAGE)]
        await (
            caller.ws.send_bytes(with_reason)
            if isinstance(with_reason, bytes)
            else caller.ws.send_str(with_reason)
        )
    assert await close_code(caller) == 1003
    await released(server, stt)
    assert not errors(caplog)
    assert any("sent only bad frames" in r.getMessage() for r in caplog.records)


async def test_a_frame_over_the_size_limit_ends_the_call_with_1009(
    serve: Serve, phone: Phone, stt: SpeechToText, caplog: pytest.LogCaptureFixture
) -> None:
    """The socket refuses a frame over MAX_FRAME_BYTES before reading it whole (a 1 MB
    frame is 50 s of audio, never an ACS frame): WebSocket's own "message too big"."""
    server = await serve()
    caller = await phone.call(server, "too-big")
    await caller.ws.send_str(audio_frame(b"\0" * (MAX_FRAME_BYTES * 3)))
    assert await close_code(caller) == 1009
    await released(server, stt)
    assert not errors(caplog)


# -- audio formats ----------------------------------------------------------------------


async def test_a_call_at_24_khz_is_heard_and_answered_at_24_khz(
    serve: Serve,
    phone: Phone,
    stt: SpeechToText,
    caller_voice: TextToSpeech,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ACS also streams PCM 24 kHz mono: the caller is resampled to 16 kHz for recognition,
    the bot's voice to 24 kHz for the call. A 16 kHz call alongside is the yardstick."""
    server = await serve()
    wide = await phone.call(server, "at-24k", sample_rate=24_000)
    narrow = await phone.call(server, "at-16k")
    # The same greeting, the same voice: 1.5 times the bytes at 24 kHz (Piper varies its
    # pace a little from one synthesis to the next, hence the tolerance).
    heard_wide, heard_narrow = await asyncio.gather(wide.listen(), narrow.listen())
    assert heard_narrow.audio and heard_wide.audio
    assert len(heard_wide.audio) / len(heard_narrow.audio) == pytest.approx(1.5, rel=0.12)

    said = b"".join([chunk async for chunk in caller_voice.speak("I would like to check on my order.")])
    said_at_24k = float_to_pcm(np.asarray(resample_poly(pcm_to_float(said), 3, 2), dtype=np.float32))
    heard_at_16k, heard_at_24k = await asyncio.gather(
        say_and_get_an_answer(narrow, call_on(server, "at-16k"), said),
        say_and_get_an_answer(wide, call_on(server, "at-24k"), said_at_24k),
    )
    # Heard about as well as at 16 kHz: a resampled signal is not the same bits, and the
    # recognizer may pick a different near-homophone ("check on" / "take all").
    assert "order" in heard_at_24k.text, heard_at_24k.text
    words_16k, words_24k = heard_at_16k.text.split(), heard_at_24k.text.split()
    assert SequenceMatcher(None, words_16k, words_24k).ratio() >= 0.7, (words_16k, words_24k)
    await phone.hang_up_all()
    await released(server, stt)
    assert not errors(caplog)


@pytest.mark.parametrize(
    "announced",
    [
        {"encoding": "PCM", "sampleRate": 16000, "channels": 8},
        {"encoding": "OPUS", "sampleRate": 16000, "channels": 1},
        {"encoding": "PCM", "sampleRate": 1000, "channels": 1},
    ],
    ids=["8-channels", "opus", "1000-Hz"],
)
async def test_audio_the_app_cannot_decode_ends_the_call_with_1003(
    announced: dict[str, Any],
    serve: Serve,
    phone: Phone,
    stt: SpeechToText,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call whose audio cannot be decoded is ended at once: run on, the bot would talk
    to a caller it can never understand (and ACS would play its 16 kHz mono as noise)."""
    server = await serve()
    caller = await phone.call(server, "undecodable", open_line=False)
    await caller.ws.send_str(json.dumps({"kind": "AudioMetadata", "audioMetadata": announced}))
    assert await close_code(caller) == 1003
    await released(server, stt)
    assert not errors(caplog)
    assert any("unsupported audio" in r.getMessage() for r in caplog.records)


# -- a quiet line, hang-ups -------------------------------------------------------------


async def test_a_line_that_sends_nothing_is_hung_up_after_the_idle_timeout(
    serve: Serve, phone: Phone, stt: SpeechToText, caplog: pytest.LogCaptureFixture
) -> None:
    server = await serve(VOICE_IDLE_TIMEOUT_S=1)
    lent_before = stt.calls_in_progress
    started = time.monotonic()
    caller = await phone.call(server, "quiet", open_line=False)  # metadata, then nothing at all
    assert stt.calls_in_progress == lent_before + 1
    assert await close_code(caller) == 1000
    assert time.monotonic() - started < 8
    await released(server, stt, lent_before)
    assert not errors(caplog)


@pytest.mark.timeout(180)
async def test_callers_hanging_up_mid_turn_leave_nothing_behind(
    serve: Serve,
    phone: Phone,
    stt: SpeechToText,
    yes: bytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hang-ups while the caller speaks, while the bot works out its answer, and while it
    answers: the turn under way still finishes (its state is saved), nothing is left
    running, and a call that stays on is answered all along."""
    server = await serve()
    tasks_before = asyncio.all_tasks()
    voice = voice_of(server)
    # The channel's seam to the bot, observed: when each call's turn starts and ends.
    started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
    finished: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
    run_turn = voice._run_turn

    async def observed(activity: dict[str, Any], deliver: Callable[[dict[str, Any]], Awaitable[str]]) -> None:
        conversation = activity["conversation"]["id"]
        if activity["type"] == "message":
            started[conversation].set()
        await run_turn(activity, deliver)
        if activity["type"] == "message":
            finished[conversation].set()

    monkeypatch.setattr(voice, "_run_turn", observed)
    bystander = await phone.call(server, "bystander")
    staying = call_on(server, "bystander")

    async def hang_up_during(name: str, moment: str) -> None:
        caller = await phone.call(server, name)
        call = call_on(server, name)
        await eventually(lambda: caller.heard.first_audio_at is not None, 30.0, "the greeting")
        if moment == "the caller's words":
            await caller.send_audio(yes[: len(yes) // 2])
        else:
            turns_before = len(call.stats.timings)
            await caller.send_audio(yes + SILENCE * 50)
            await asyncio.wait_for(started[f"voice-{name}"].wait(), 30.0)
            if moment == "the answer":
                await answered(call, turns_before)
        await caller.hang_up()
        if moment != "the caller's words":
            await asyncio.wait_for(finished[f"voice-{name}"].wait(), 30.0)

    moments = ("the caller's words", "the bot's thinking", "the answer")
    # The first hang-ups warm every pool (threads start on first use); later ones must not add.
    for moment in moments:
        await hang_up_during(f"warm-up-{moments.index(moment)}", moment)
    await eventually(lambda: list(voice.calls) == ["voice-bystander"], 30.0, "the hang-ups")
    threads_warm = threading.active_count()
    # The embedding model's process (and its resource tracker) may start with the first turn.
    children_warm = set(child_processes())
    for round_ in range(2):
        for moment in moments:
            await hang_up_during(f"hang-up-{round_}-{moments.index(moment)}", moment)
    await eventually(lambda: list(voice.calls) == ["voice-bystander"], 30.0, "the hang-ups")
    assert stt.calls_in_progress == 1

    # The call that stayed on was not disturbed.
    await say_and_get_an_answer(bystander, staying, yes)
    await bystander.hang_up()
    await released(server, stt)

    assert threading.active_count() <= threads_warm, [t.name for t in threading.enumerate()]
    assert set(child_processes()) <= children_warm
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() - tasks_before if t is not current and not t.done()}
    # The callers' own reader tasks end with their sockets; the server's call tasks must be gone.
    await eventually(lambda: all(t.done() for t in left), 5.0, f"tasks left running: {left}")
    assert not errors(caplog)


class ScriptedSocket:
    """The call's WebSocket, scripted: what the caller sends is queued by the test, what the
    call sends is recorded. Drives a `Call` without a network, models or real time."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[aiohttp.WSMessage] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed = False

    def caller_sends(self, frame: str) -> None:
        self.incoming.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, frame, None))

    async def receive(self) -> aiohttp.WSMessage:
        return await self.incoming.get()

    async def send_str(self, data: str) -> None:
        if self.closed:
            raise ConnectionResetError("the caller hung up")
        self.sent.append(json.loads(data))

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed = True
        self.incoming.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None))
        return True


class InstantVoice:
    """Half a second of audio per sentence, at once: the speaker's queue fills at once."""

    name = "instant"

    async def start(self) -> None:
        pass

    async def speak(self, text: str) -> AsyncIterator[bytes]:
        yield b"\x01\x00" * 8000

    async def aclose(self) -> None:
        pass


class DeafListener:
    async def hear(self, pcm: bytes) -> list[Any]:
        return []

    def expect(self, expecting: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def test_cutting_off_a_long_answer_does_not_wait_for_it() -> None:
    """A long answer is synthesised a few pieces ahead of what plays. Cutting it off (the
    caller speaks or presses a key) waited for the queued pieces to be played, which never
    happened: the call stopped listening for good. Driven with a key, without audio."""
    socket = ScriptedSocket()

    async def bot(activity: dict[str, Any], deliver: Callable[[dict[str, Any]], Awaitable[str]]) -> None:
        if activity["type"] == "message":
            await deliver({"type": "message", "text": f"You pressed {activity['text']}."})

    call = Call(
        socket,  # type: ignore[arg-type]
        DeafListener(),  # type: ignore[arg-type]
        InstantVoice(),  # type: ignore[arg-type]
        bot,
        caller="+15550100123",
        conversation_id="voice-scripted",
        bot={"id": "bot", "name": "Aftercare", "role": "bot"},
        idle_timeout_s=30.0,
        timings=deque(),
    )
    running = asyncio.create_task(call.run())
    call.say(" ".join(f"Sentence {index}." for index in range(12)))
    await eventually(lambda: any(frame["Kind"] == "AudioData" for frame in socket.sent), 5.0, "the answer")

    socket.caller_sends(keys_frame("1#"))
    await eventually(lambda: any(frame["Kind"] == "StopAudio" for frame in socket.sent), 5.0, "a StopAudio")
    stopped_at = next(i for i, frame in enumerate(socket.sent) if frame["Kind"] == "StopAudio")
    # The call still listens: the key was taken as a turn, and its answer is spoken.
    await eventually(lambda: call.stats.turns == 1, 5.0, "the keys answered")
    await eventually(lambda: len(socket.sent) > stopped_at + 1, 5.0, "the answer to the keys")

    await socket.close()
    await asyncio.wait_for(running, 5.0)


# -- a full house# -- a full house -----------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_twenty_calls_at_once_are_each_greeted_and_answered(
    serve: Serve,
    phone: Phone,
    stt: SpeechToText,
    yes: bytes,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As many calls as the app takes by default, all at once on a 2-core machine: slow,
    but each is greeted and answered; one more is refused with a sentence."""
    lines = settings.voice_max_calls
    assert lines == 20
    server = await serve()
    names = [f"caller-{index}" for index in range(lines)]
    callers = await asyncio.gather(*(phone.call(server, name) for name in names))
    assert len(voice_of(server).calls) == lines

    refused = await upgrade(server)
    assert refused.status == 503

    await eventually(
        lambda: all(caller.heard.first_audio_at is not None for caller in callers), 120.0, "every greeting"
    )
    turns = await asyncio.gather(
        *(
            say_and_get_an_answer(caller, call_on(server, name), yes, 150.0)
            for caller, name in zip(callers, names, strict=True)
        )
    )
    assert all(turn.text for turn in turns)
    await phone.hang_up_all()
    await released(server, stt)
    assert not errors(caplog)


@dataclass(frozen=True)
class Refusal:
    status: int
    headers: dict[str, str]
    message: str


async def upgrade(server: TestServer, query: str = "") -> Refusal:
    """A WebSocket upgrade request whose answer the test reads as plain HTTP."""
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url(f"/api/voice{query}"), headers=headers) as response,
    ):
        body = await response.json()
        return Refusal(response.status, dict(response.headers), body["error"]["message"])


async def test_a_call_beyond_the_lines_is_refused_before_the_upgrade_with_a_sentence(
    serve: Serve, phone: Phone, stt: SpeechToText, caplog: pytest.LogCaptureFixture
) -> None:
    server = await serve(VOICE_MAX_CALLS=2)
    first = await phone.call(server, "first", open_line=False)
    await phone.call(server, "second", open_line=False)

    refused = await upgrade(server)
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    assert "busy" in refused.message
    with pytest.raises(aiohttp.WSServerHandshakeError) as handshake:
        await phone.call(server, "third")
    assert handshake.value.status == 503

    # A line freed is a line taken again.
    await first.hang_up()
    await eventually(lambda: len(voice_of(server).calls) == 1, 10.0, "the first call ended")
    await phone.call(server, "fourth", open_line=False)
    await phone.hang_up_all()
    await released(server, stt)
    assert not errors(caplog)


# -- not a call -------------------------------------------------------------------------


async def test_a_plain_get_is_told_to_upgrade(serve: Serve) -> None:
    server = await serve()
    async with aiohttp.ClientSession() as session:
        response = await session.get(server.make_url("/api/voice"))
        assert response.status == 426
        assert "WebSocket" in (await response.json())["error"]["message"]


async def test_a_bad_ticket_is_refused(serve: Serve) -> None:
    server = await serve()
    refused = await upgrade(server, "?ticket=not-a-ticket")
    assert refused.status == 401
    assert "ticket" in refused.message
