"""The Azure Communication Services media-streaming messages on the call's WebSocket.

ACS sends JSON text frames: `AudioMetadata` first (encoding, sample rate, channels, frame
length), then `AudioData` (base64 PCM, about every 20 ms) and `DtmfData` (a key the
caller pressed). With bidirectional streaming the app sends `AudioData` back, which ACS
plays into the call, and `StopAudio`, which drops what ACS has queued to play.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

# The largest frame accepted from the socket: a second of 24 kHz audio, base64, with room.
MAX_FRAME_BYTES = 256 * 1024


# The sample rates a call may stream: ACS's own (16 and 24 kHz) and the other multiples
# of 8 kHz. Any other rate is refused: resampling 44101 Hz to 16 kHz takes a filter of
# 880,000 taps, seconds of CPU per 20 ms frame on the event loop.
SAMPLE_RATES = frozenset({8000, 16000, 24000, 32000, 48000})


class BadFrame(ValueError):
    """A frame that is not an ACS media message; the reason is safe to log."""


class UnsupportedAudio(BadFrame):
    """Well-formed `AudioMetadata` announcing audio the app cannot decode (not 16-bit PCM
    mono, or an odd sample rate): nothing the caller says could be heard, so the call is
    ended rather than run deaf."""


@dataclass(frozen=True)
class AudioFormat:
    sample_rate: int
    channels: int = 1
    encoding: str = "PCM"


@dataclass(frozen=True)
class AudioIn:
    pcm: bytes
    silent: bool


@dataclass(frozen=True)
class KeyPressed:
    keys: str


@dataclass(frozen=True)
class Ignored:
    kind: str


MediaMessage = AudioFormat | AudioIn | KeyPressed | Ignored

_DTMF_KEYS = frozenset("0123456789*#ABCD")


def _field(message: dict[str, Any], name: str) -> Any:
    # ACS writes camelCase; its samples write PascalCase. Either is taken.
    for key, value in message.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def parse(frame: str | bytes) -> MediaMessage:
    if len(frame) > MAX_FRAME_BYTES:
        raise BadFrame(f"a frame of {len(frame)} bytes is too large")
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise BadFrame("a frame that is not JSON") from None
    if not isinstance(message, dict):
        raise BadFrame("a frame that is not a JSON object")
    kind = _field(message, "kind")
    if not isinstance(kind, str):
        raise BadFrame("a frame without a kind")
    lowered = kind.lower()
    if lowered == "audiometadata":
        return _metadata(_field(message, "audioMetadata"))
    if lowered == "audiodata":
        return _audio(_field(message, "audioData"))
    if lowered == "dtmfdata":
        data = _field(message, "dtmfData")
        keys = _field(data, "data") if isinstance(data, dict) else None
        if not isinstance(keys, str) or not keys or not set(keys.upper()) <= _DTMF_KEYS:
            raise BadFrame("a DtmfData frame without keys")
        return KeyPressed(keys.upper())
    return Ignored(kind[:40])


def _metadata(body: Any) -> AudioFormat:
    if not isinstance(body, dict):
        raise BadFrame("an AudioMetadata frame without its metadata")
    rate, channels, encoding = _field(body, "sampleRate"), _field(body, "channels"), _field(body, "encoding")
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise BadFrame(f"an unusable sample rate: {str(rate)[:20]!r}")
    if channels is None:
        channels = 1
    if not isinstance(channels, int) or isinstance(channels, bool):
        raise BadFrame(f"an unusable channel count: {str(channels)[:20]!r}")
    if encoding is None:
        encoding = "PCM"
    if not isinstance(encoding, str):
        raise BadFrame("an unusable encoding")
    if encoding.upper() != "PCM" or channels != 1 or rate not in SAMPLE_RATES:
        raise UnsupportedAudio(f"unsupported audio: {encoding[:20]!r}, {channels} channel(s), {rate} Hz")
    return AudioFormat(rate, channels, encoding.upper())


def _audio(body: Any) -> AudioIn:
    if not isinstance(body, dict):
        raise BadFrame("an AudioData frame without audio")
    data = _field(body, "data")
    if not isinstance(data, str):
        raise BadFrame("an AudioData frame without data")
    try:
        pcm = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadFrame("an AudioData frame whose data is not base64") from None
    return AudioIn(pcm, _field(body, "silent") is True)


def audio_out(pcm: bytes) -> str:
    """Audio for ACS to play into the call (the format the call's metadata announced)."""
    return orjson.dumps(
        {"Kind": "AudioData", "AudioData": {"Data": base64.b64encode(pcm).decode("ascii")}, "StopAudio": None}
    ).decode()


STOP_AUDIO = orjson.dumps({"Kind": "StopAudio", "AudioData": None, "StopAudio": {}}).decode()
