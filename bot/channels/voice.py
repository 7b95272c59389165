"""The phone channel: `GET /api/voice`, the WebSocket that Azure Communication Services
streams a call's audio over (`bot.channels.acs_media` has the message format).

Each call is a conversation of its own (channel id "voice", the caller's number as the
user) through the same adapter, bot and store as chat. A call is a chain of small async
stages with queues between them:

    socket in -> listener (VAD -> STT) -> turns (the bot) -> speaker (TTS) -> socket out

Barge-in: when the caller starts speaking while the bot's audio is still playing, the
call sends `StopAudio` (ACS drops what it queued), drops the sentences not yet spoken
and listens. Keypad digits (DTMF) are taken for order numbers and zip codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
from aiohttp import WSMsgType, web
from scipy.signal import resample_poly

from bot.channels.acs_media import (
    MAX_FRAME_BYTES,
    STOP_AUDIO,
    AudioFormat,
    AudioIn,
    BadFrame,
    Ignored,
    KeyPressed,
    UnsupportedAudio,
    audio_out,
    parse,
)
from bot.channels.call_tickets import CallTickets
from bot.channels.http import RouteSpecs, bound_routes
from bot.errors import ChannelError, Unauthorized
from bot.rate_limits import RateLimits
from bot.redaction import redact_activity
from providers.speech import Listener, SpeechStarted, TextToSpeech, Utterance
from providers.speech.audio import StreamResampler, float_to_pcm, pcm_to_float
from providers.speech.base import BYTES_PER_SAMPLE, SAMPLE_RATE, Expectation
from providers.speech.stack import SpeechStack
from shop import telemetry
from shop.errors import ConfigurationError, SpeechUnavailable

log = logging.getLogger(__name__)

CHANNEL_ID = "voice"
# Activities from calls carry this serviceUrl: replies never leave the process.
SERVICE_URL = "urn:aftercare:voice"
# The bot's audio runs at most this far ahead of what the caller has heard, so a barge-in
# has little queued in ACS to drop and a hang-up wastes little synthesis.
MAX_AHEAD_S = 1.0
# Outgoing audio frames, as ACS sends its own: 20 ms.
FRAME_S = 0.02
# A call whose socket sends only garbage this many frames in a row is ended.
MAX_BAD_FRAMES = 50
# A turn still running when the caller hangs up may finish this long (its state is saved).
HANG_UP_GRACE_S = 20.0
# Keypad entry ends with "#", with the expected number of digits, or after this pause.
KEYPAD_PAUSE_S = 3.0
_KEYPAD_LENGTH: dict[str, int] = {"zip": 5, "order_id": 7, "identity": 5}
_EXPECTATIONS: frozenset[str] = frozenset({"dictation", "yes_no", "digits", "zip", "order_id", "identity"})

# Hands an activity (JSON) to the bot, with where its replies go; resolves when the turn is over.
TurnRunner = Callable[[dict[str, Any], Callable[[dict[str, Any]], Awaitable[str]]], Awaitable[None]]


@dataclass
class TurnTiming:
    """When each stage of one caller turn finished (time.monotonic()), for the benchmark."""

    speech_ended_at: float
    recognized_at: float
    reply_at: float | None = None
    first_audio_at: float | None = None
    text: str = ""


@dataclass
class CallStats:
    turns: int = 0
    barge_ins: int = 0
    bad_frames: int = 0
    timings: list[TurnTiming] = field(default_factory=list)


class LinesBusy(ChannelError):
    """Every line this instance serves is taken. A 503, the one 5xx the phone channel
    answers on purpose: it is the server's capacity, not the client's fault (429), and it
    comes before the WebSocket upgrade, so the client reads a status and a sentence rather
    than a socket that opens and drops. ACS does not retry a media stream it could not
    open (the call gets a MediaStreamingFailed event), so Retry-After serves the other
    clients (a softphone, a load test); the call webhook is where calls beyond capacity
    should be turned away before they are answered."""

    status = 503
    code = "ServiceUnavailable"
    retry_after_s = 5


class VoiceChannel:
    ROUTES: ClassVar[RouteSpecs] = (("GET", "/api/voice", "connect"),)

    def __init__(
        self,
        speech: SpeechStack,
        run_turn: TurnRunner,
        *,
        tickets: CallTickets | None,
        limits: RateLimits,
        idle_timeout_s: float,
        bot_id: str,
        bot_name: str,
        max_calls: int,
        require_tickets: bool = False,
    ) -> None:
        self._speech = speech
        self._max_calls = max_calls
        # Calls admitted, counted before the awaits that answer them, so calls arriving
        # together cannot all pass the check (`calls` fills only once a call is set up).
        self._lines_in_use = 0
        self._require_tickets = require_tickets
        self._run_turn = run_turn
        self._tickets = tickets
        self._limits = limits
        self._idle_timeout_s = idle_timeout_s
        self._bot = {"id": bot_id, "name": bot_name, "role": "bot"}
        self.calls: dict[str, Call] = {}
        # The latest turns' stage timings, newest last (the voice benchmark reads them).
        self.timings: deque[TurnTiming] = deque(maxlen=5000)

    def routes(self) -> list[web.RouteDef]:
        return bound_routes(self, self.ROUTES)

    async def connect(self, request: web.Request) -> web.StreamResponse:
        caller, call_id = self._identify(request)
        if not request.query.get("ticket"):
            # A ticketed call was answered by ACS, which opens every call's socket from a
            # few addresses: only ticketless (local) callers spend an address's budget.
            self._limits.per_address(self._limits.conversations, request)
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=30.0)
        if not ws.can_prepare(request).ok:
            raise ChannelError(
                "this is the phone channel's WebSocket: connect with a WebSocket upgrade",
                status=426,
                code="UpgradeRequired",
            )
        # The speech provider's pool has its own limit (from the same setting), but the
        # stack may be shared by several apps (the tests): the channel keeps its own count.
        if self._lines_in_use >= self._max_calls:
            raise LinesBusy("every phone line is busy; please call again shortly")
        self._lines_in_use += 1
        try:
            return await self._answer(request, ws, caller, call_id)
        finally:
            self._lines_in_use -= 1

    async def _answer(
        self, request: web.Request, ws: web.WebSocketResponse, caller: str, call_id: str
    ) -> web.StreamResponse:
        try:
            stt, tts = await self._speech.ready()
            listener = await stt.listener()
        except ConfigurationError as exc:
            log.error("the phone channel cannot take calls: %s", exc)
            raise ChannelError(
                "the phone channel is not available on this server", status=503, code="ServiceUnavailable"
            ) from None
        except SpeechUnavailable as exc:
            raise ChannelError(
                f"{exc}; please call again shortly", status=503, code="ServiceUnavailable"
            ) from None
        call = Call(
            ws,
            listener,
            tts,
            self._run_turn,
            caller=caller,
            conversation_id=f"voice-{call_id}",
            bot=self._bot,
            idle_timeout_s=self._idle_timeout_s,
            timings=self.timings,
        )
        self.calls[call.conversation_id] = call
        telemetry.CALLS_ACTIVE.inc()
        try:
            await ws.prepare(request)
            log.info("call %s connected (caller %s)", call.conversation_id, masked(caller))
            await call.run()
        finally:
            self.calls.pop(call.conversation_id, None)
            telemetry.CALLS_ACTIVE.dec()
            await listener.aclose()
            log.info(
                "call %s ended: %d turns, %d barge-ins, %d bad frames",
                call.conversation_id,
                call.stats.turns,
                call.stats.barge_ins,
                call.stats.bad_frames,
            )
        return ws

    def _identify(self, request: web.Request) -> tuple[str, str]:
        """The caller and the call. With ACS configured, only a ticket the app gave ACS
        when it answered opens the socket; without it, this machine's own clients (a
        local softphone, the tests, the benchmark) may call, as the number they name."""
        ticket = request.query.get("ticket")
        if ticket and self._tickets is not None:
            redeemed = self._tickets.redeem(ticket)
            return redeemed.caller, redeemed.call_id
        if self._require_tickets:
            raise Unauthorized("a call ticket is required")
        address = self._limits.client_address(request)
        if not _is_loopback(address):
            raise Unauthorized("a call ticket is required")
        caller = request.query.get("caller", "").strip()[:64] or "local-caller"
        return caller, request.headers.get("x-ms-call-connection-id", "")[:64] or uuid.uuid4().hex

    async def speak_into(self, conversation_id: str, text: str) -> bool:
        """Says `text` on the call (an agent's message); False when the call has ended."""
        call = self.calls.get(conversation_id)
        if call is None:
            return False
        call.say(text)
        return True

    async def aclose(self) -> None:
        for call in list(self.calls.values()):
            await call.hang_up()


def _observe(timing: TurnTiming) -> None:
    """The turn's stages into the voice latency histogram (and a span for the trace)."""
    if timing.reply_at is None or timing.first_audio_at is None:
        return
    stages = {
        "endpointing": timing.recognized_at - timing.speech_ended_at,
        "bot": timing.reply_at - timing.recognized_at,
        "speech": timing.first_audio_at - timing.reply_at,
        "total": timing.first_audio_at - timing.speech_ended_at,
    }
    for stage, seconds in stages.items():
        telemetry.VOICE_LATENCY.labels(stage).observe(max(0.0, seconds))
    with telemetry.span(
        "voice.response", **{f"aftercare.voice.{k}_ms": round(v * 1000, 1) for k, v in stages.items()}
    ):
        pass


def _is_loopback(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def masked(caller: str) -> str:
    """A caller's number for the logs: enough to tell calls apart, not to dial."""
    return caller[:3] + "…" + caller[-2:] if len(caller) > 6 else "…"


class Call:
    """One phone call: its socket, its stages, and what it is waiting for."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        listener: Listener,
        tts: TextToSpeech,
        run_turn: TurnRunner,
        *,
        caller: str,
        conversation_id: str,
        bot: dict[str, str],
        idle_timeout_s: float,
        timings: deque[TurnTiming],
    ) -> None:
        self._ws = ws
        self._listener = listener
        self._tts = tts
        self._run_turn = run_turn
        self._caller = caller
        self.conversation_id = conversation_id
        self._bot = bot
        self._idle_timeout_s = idle_timeout_s
        self._timings = timings
        self.stats = CallStats()
        self._format = AudioFormat(SAMPLE_RATE)
        # The caller's audio, frame by frame, to 16 kHz when the call streams another rate.
        self._resampler: StreamResampler | None = None
        self._turns: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sentences: asyncio.Queue[tuple[str, TurnTiming | None]] = asyncio.Queue()
        self._turn_task: asyncio.Task[None] | None = None
        self._speaker_task: asyncio.Task[None] | None = None
        self._keypad_task: asyncio.Task[None] | None = None
        self._audible_until = 0.0
        self._keys = ""
        self._expecting: Expectation = "dictation"
        self._current: TurnTiming | None = None
        self._idle = asyncio.Event()  # set while no turn is running
        self._idle.set()
        self._ended = False

    async def run(self) -> None:
        self._turn_task = asyncio.create_task(self._take_turns(), name=f"{self.conversation_id} turns")
        self._speaker_task = asyncio.create_task(self._speak(), name=f"{self.conversation_id} speaker")
        self._turns.put_nowait(self._activity("conversationUpdate", membersAdded=[self._caller_account()]))
        try:
            await self._listen()
        finally:
            await self._finish()

    # -- socket in ---------------------------------------------------------------------

    async def _listen(self) -> None:
        ws, bad_in_a_row = self._ws, 0
        while not self._ended:
            try:
                message = await asyncio.wait_for(ws.receive(), self._idle_timeout_s)
            except TimeoutError:
                log.info(
                    "call %s sent nothing for %.0f s; ending it", self.conversation_id, self._idle_timeout_s
                )
                await ws.close(code=1000, message=b"no audio")
                return
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            try:
                media = parse(message.data)
                if isinstance(media, AudioFormat):
                    self._use_format(media)
                elif isinstance(media, AudioIn):
                    await self._hear(self._to_call_audio(media.pcm))
                elif isinstance(media, KeyPressed):
                    await self._keypad(media.keys)
                elif isinstance(media, Ignored):
                    log.debug("call %s: ignored a %s frame", self.conversation_id, media.kind)
                bad_in_a_row = 0
            except UnsupportedAudio as exc:
                # The caller's audio could not be heard, nor the bot's played: ending the
                # call beats a bot that never understands (ACS sends the metadata once).
                self.stats.bad_frames += 1
                log.warning("call %s: %s; ending it", self.conversation_id, exc)
                await ws.close(code=1003, message=b"unsupported audio format")
                return
            except BadFrame as exc:
                self.stats.bad_frames += 1
                bad_in_a_row += 1
                if self.stats.bad_frames == 1:
                    log.warning("call %s: %s (further bad frames are counted)", self.conversation_id, exc)
                if bad_in_a_row >= MAX_BAD_FRAMES:
                    log.warning("call %s sent only bad frames; ending it", self.conversation_id)
                    await ws.close(code=1003, message=b"not ACS media messages")
                    return

    def _use_format(self, announced: AudioFormat) -> None:
        # `parse` let through only the formats a call can take (16-bit PCM, mono).
        self._format = announced
        self._resampler = None
        if announced.sample_rate != SAMPLE_RATE:
            log.info("call %s streams %d Hz audio; resampling", self.conversation_id, announced.sample_rate)
            self._resampler = StreamResampler(announced.sample_rate, SAMPLE_RATE)

    def _to_call_audio(self, pcm: bytes) -> bytes:
        if self._resampler is None:
            return pcm
        return float_to_pcm(self._resampler(pcm_to_float(pcm)))

    async def _hear(self, pcm: bytes) -> None:
        for heard in await self._listener.hear(pcm):
            if isinstance(heard, SpeechStarted):
                await self._barge_in()
            elif isinstance(heard, Utterance):
                self._on_utterance(heard)

    def _on_utterance(self, heard: Utterance) -> None:
        text = heard.text.strip()
        if not text:
            return  # a cough, a door: nothing to answer
        timing = TurnTiming(speech_ended_at=heard.speech_ended_at, recognized_at=heard.ended_at, text=text)
        self._turns.put_nowait(
            self._activity(
                "message",
                text=text,
                timing=timing,
                channelData={"aftercare": {"speechConfidence": round(heard.confidence, 3)}},
            )
        )

    async def _keypad(self, keys: str) -> None:
        await self._barge_in()
        for key in keys:
            if key == "*":
                self._keys = ""
            elif key == "#":
                self._submit_keys()
            elif key.isdigit():
                self._keys += key
                if len(self._keys) == _KEYPAD_LENGTH.get(self._expecting, 0):
                    self._submit_keys()
        if self._keypad_task is not None:
            self._keypad_task.cancel()
        if self._keys:
            self._keypad_task = asyncio.create_task(self._submit_keys_after_pause())

    async def _submit_keys_after_pause(self) -> None:
        await asyncio.sleep(KEYPAD_PAUSE_S)
        self._submit_keys()

    def _submit_keys(self) -> None:
        digits, self._keys = self._keys, ""
        if not digits:
            return
        # Seven digits where an order number is asked are one (the shop's ids are "#W" + 7).
        text = f"#W{digits}" if self._expecting == "order_id" and len(digits) == 7 else digits
        now = time.monotonic()
        self._turns.put_nowait(
            self._activity(
                "message", text=text, timing=TurnTiming(speech_ended_at=now, recognized_at=now, text=text)
            )
        )

    # -- the bot -----------------------------------------------------------------------

    async def _take_turns(self) -> None:
        while True:
            activity = await self._turns.get()
            timing: TurnTiming | None = activity.pop("_timing", None)
            self._current = timing
            self._idle.clear()
            try:
                await self._run_turn(redact_activity(activity), self._deliver)
            except Exception:
                # The adapter already apologised where it could; the call goes on.
                log.exception("call %s: a turn failed", self.conversation_id)
            if timing is not None:
                self.stats.turns += 1
                self.stats.timings.append(timing)
            self._current = None
            self._idle.set()

    async def _deliver(self, activity: dict[str, Any]) -> str:
        if activity.get("type") == "message":
            text = activity.get("speak") or activity.get("text") or ""
            expecting = ((activity.get("channelData") or {}).get("aftercare") or {}).get("expecting")
            if expecting in _EXPECTATIONS:
                self._expecting = expecting
                self._listener.expect(expecting)
            if text:
                timing = self._current
                if timing is not None and timing.reply_at is None:
                    timing.reply_at = time.monotonic()
                else:
                    timing = None
                self._sentences.put_nowait((text, timing))
        return uuid.uuid4().hex

    def say(self, text: str) -> None:
        """Speaks `text` after whatever is queued (an agent's message during a handoff)."""
        self._sentences.put_nowait((text, None))

    # -- socket out --------------------------------------------------------------------

    async def _speak(self) -> None:
        """Plays the queued replies. The next piece is synthesised while the current one
        plays, so long answers have no gaps and the first words go out early."""
        while True:
            text, timing = await self._sentences.get()
            pieces: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)
            producer = asyncio.create_task(self._synthesise(text, pieces))
            try:
                while (pcm := await pieces.get()) is not None:
                    await self._play(self._from_call_audio(pcm), timing)
            except (ConnectionError, RuntimeError):
                return  # the caller hung up
            finally:
                producer.cancel()
                # Room for the end marker the cancelled producer puts on its way out: in a
                # full queue it waited for a reader that had left, and this task with it, so
                # a caller who spoke over a long answer was never heard again.
                while not pieces.empty():
                    pieces.get_nowait()
                await asyncio.gather(producer, return_exceptions=True)

    async def _synthesise(self, text: str, pieces: asyncio.Queue[bytes | None]) -> None:
        try:
            for clause in spoken_clauses(text):
                async for pcm in self._tts.speak(clause):
                    await pieces.put(pcm)
        except SpeechUnavailable as exc:
            log.warning("call %s: could not speak a reply: %s", self.conversation_id, exc)
        finally:
            await pieces.put(None)

    async def _play(self, pcm: bytes, timing: TurnTiming | None) -> None:
        bytes_per_s = self._format.sample_rate * BYTES_PER_SAMPLE
        frame = int(bytes_per_s * FRAME_S)
        for start in range(0, len(pcm), frame):
            chunk = pcm[start : start + frame]
            ahead = self._audible_until - time.monotonic()
            if ahead > MAX_AHEAD_S:
                await asyncio.sleep(ahead - MAX_AHEAD_S)
            await self._ws.send_str(audio_out(chunk))
            now = time.monotonic()
            if timing is not None and timing.first_audio_at is None:
                timing.first_audio_at = now
                self._timings.append(timing)
                _observe(timing)
            self._audible_until = max(now, self._audible_until) + len(chunk) / bytes_per_s

    def _from_call_audio(self, pcm: bytes) -> bytes:
        if self._format.sample_rate == SAMPLE_RATE:
            return pcm
        return float_to_pcm(_resample(pcm_to_float(pcm), SAMPLE_RATE, self._format.sample_rate))

    async def _barge_in(self) -> None:
        """The caller speaks (or presses a key): the bot stops talking and listens."""
        playing = self._audible_until > time.monotonic()
        queued = not self._sentences.empty()
        while not self._sentences.empty():
            self._sentences.get_nowait()
        if playing:
            await self._send(STOP_AUDIO)
            self.stats.barge_ins += 1
            self._audible_until = 0.0
        if playing or queued:
            await self._restart_speaker()

    async def _restart_speaker(self) -> None:
        if self._speaker_task is not None:
            self._speaker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._speaker_task
        if not self._ended:
            self._speaker_task = asyncio.create_task(self._speak(), name=f"{self.conversation_id} speaker")

    async def _send(self, frame: str) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._ws.send_str(frame)

    # -- the end -----------------------------------------------------------------------

    async def hang_up(self) -> None:
        self._ended = True
        await self._ws.close(code=1001, message=b"the service is stopping")

    async def _finish(self) -> None:
        """Stops every stage; a turn in progress may finish (so its state is saved)."""
        self._ended = True
        for task in (self._keypad_task, self._speaker_task):
            if task is not None:
                task.cancel()
        if self._turn_task is not None:
            # Turns queued but not started are dropped; the running one gets its grace.
            while not self._turns.empty():
                self._turns.get_nowait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), HANG_UP_GRACE_S)
            self._turn_task.cancel()
        for task in (self._keypad_task, self._speaker_task, self._turn_task):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if not self._ws.closed:
            await self._ws.close()

    def _caller_account(self) -> dict[str, str]:
        return {"id": self._caller, "name": "Caller", "role": "user"}

    def _activity(self, kind: str, *, timing: TurnTiming | None = None, **fields: Any) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "type": kind,
            "id": uuid.uuid4().hex,
            "channelId": CHANNEL_ID,
            "serviceUrl": SERVICE_URL,
            "timestamp": datetime.now(UTC).isoformat(),
            "locale": "en-US",
            "conversation": {"id": self.conversation_id},
            "from": self._caller_account(),
            "recipient": self._bot,
            **fields,
        }
        if timing is not None:
            activity["_timing"] = timing
        return activity


# Where a reply may be cut for synthesis: after a sentence, a semicolon (the items of a
# list read out) or a colon ("Our return policy in short: ..."), so the first words are
# not held back by the last ones: the caller waits for the first piece's synthesis
# (Piper takes about a tenth of the audio's length), the later ones are made as it plays.
_CLAUSE_END = re.compile(r"(?<=[.!?;:])\s+")


def spoken_clauses(text: str) -> list[str]:
    return [clause for clause in _CLAUSE_END.split(text.strip()) if clause]


def _resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    ratio = Fraction(rate_out, rate_in)
    return np.asarray(resample_poly(samples, ratio.numerator, ratio.denominator), dtype=np.float32)
