"""The ACS media-streaming messages: what `parse` takes (ACS's camelCase and its samples'
PascalCase), what it refuses and why, and what the app sends back."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

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
from providers.speech.audio import pcm_to_float

PCM = bytes(range(256)) * 2


def frame(body: Any) -> str:
    return json.dumps(body)


def test_metadata_in_camel_case() -> None:
    announced = parse(
        frame(
            {
                "kind": "AudioMetadata",
                "audioMetadata": {"encoding": "PCM", "sampleRate": 16000, "channels": 1, "length": 640},
            }
        )
    )
    assert announced == AudioFormat(16000, 1, "PCM")


def test_metadata_in_pascal_case_with_a_lower_case_encoding() -> None:
    announced = parse(
        frame(
            {
                "Kind": "AudioMetadata",
                "AudioMetadata": {"Encoding": "pcm", "SampleRate": 24000, "Channels": 1},
            }
        )
    )
    assert announced == AudioFormat(24000, 1, "PCM")


def test_metadata_without_channels_or_encoding_is_pcm_mono() -> None:
    assert parse(frame({"kind": "AudioMetadata", "audioMetadata": {"sampleRate": 16000}})) == AudioFormat(
        16000
    )


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "AudioData", "audioData": {"data": base64.b64encode(PCM).decode(), "silent": False}},
        {"Kind": "AudioData", "AudioData": {"Data": base64.b64encode(PCM).decode(), "Silent": False}},
    ],
    ids=["camelCase", "PascalCase"],
)
def test_audio_data(body: dict[str, Any]) -> None:
    assert parse(frame(body)) == AudioIn(PCM, silent=False)


def test_silent_audio_is_marked() -> None:
    heard = parse(frame({"kind": "AudioData", "audioData": {"data": "AAAA", "silent": True}}))
    assert heard == AudioIn(b"\0\0\0", silent=True)


def test_a_frame_may_arrive_as_binary() -> None:
    assert parse(frame({"kind": "DtmfData", "dtmfData": {"data": "5"}}).encode()) == KeyPressed("5")


@pytest.mark.parametrize(
    "body",
    [{"kind": "DtmfData", "dtmfData": {"data": "12#"}}, {"Kind": "DtmfData", "DtmfData": {"Data": "12#"}}],
    ids=["camelCase", "PascalCase"],
)
def test_keys(body: dict[str, Any]) -> None:
    assert parse(frame(body)) == KeyPressed("12#")


def test_letter_keys_are_upper_cased() -> None:
    assert parse(frame({"kind": "DtmfData", "dtmfData": {"data": "a*"}})) == KeyPressed("A*")


def test_a_kind_the_app_does_not_use_is_ignored_with_its_name_cut() -> None:
    assert parse(frame({"kind": "TranscriptionData"})) == Ignored("TranscriptionData")
    assert parse(frame({"kind": "x" * 1000})) == Ignored("x" * 40)


def test_an_odd_number_of_audio_bytes_is_taken_and_the_odd_byte_dropped_later() -> None:
    heard = parse(frame({"kind": "AudioData", "audioData": {"data": base64.b64encode(b"\1\0\2").decode()}}))
    assert heard == AudioIn(b"\1\0\2", silent=False)
    assert len(pcm_to_float(b"\1\0\2")) == 1


@pytest.mark.parametrize(
    ("received", "reason"),
    [
        ("{" + " " * MAX_FRAME_BYTES, "too large"),
        ("hello", "not JSON"),
        (b"\x00\xff\xfe garbage", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"AudioData"', "not a JSON object"),
        (frame({"audioData": {"data": "AAAA"}}), "without a kind"),
        (frame({"kind": 7}), "without a kind"),
        (frame({"kind": "AudioMetadata"}), "without its metadata"),
        (frame({"kind": "AudioMetadata", "audioMetadata": [16000]}), "without its metadata"),
        (frame({"kind": "AudioMetadata", "audioMetadata": {}}), "sample rate"),
        (frame({"kind": "AudioMetadata", "audioMetadata": {"sampleRate": "16000"}}), "sample rate"),
        (frame({"kind": "AudioMetadata", "audioMetadata": {"sampleRate": 16000.0}}), "sample rate"),
        (frame({"kind": "AudioMetadata", "audioMetadata": {"sampleRate": True}}), "sample rate"),
        (
            frame({"kind": "AudioMetadata", "audioMetadata": {"sampleRate": 16000, "channels": "1"}}),
            "channel",
        ),
        (frame({"kind": "AudioMetadata", "audioMetadata": {"sampleRate": 16000, "encoding": 1}}), "encoding"),
        (frame({"kind": "AudioData"}), "without audio"),
        (frame({"kind": "AudioData", "audioData": {"silent": True}}), "without data"),
        (frame({"kind": "AudioData", "audioData": {"data": 123}}), "without data"),
        (frame({"kind": "AudioData", "audioData": {"data": "not base64!"}}), "not base64"),
        (frame({"kind": "AudioData", "audioData": {"data": "AAA"}}), "not base64"),
        (frame({"kind": "DtmfData"}), "without keys"),
        (frame({"kind": "DtmfData", "dtmfData": {"data": ""}}), "without keys"),
        (frame({"kind": "DtmfData", "dtmfData": {"data": "1x"}}), "without keys"),
        (frame({"kind": "DtmfData", "dtmfData": {"data": ["1"]}}), "without keys"),
    ],
)
def test_what_is_not_an_acs_media_message_is_a_bad_frame(received: str | bytes, reason: str) -> None:
    with pytest.raises(BadFrame, match=reason) as refused:
        parse(received)
    assert not isinstance(refused.value, UnsupportedAudio)
    assert len(str(refused.value)) < 100  # safe to log: the frame's content is not repeated


@pytest.mark.parametrize(
    "metadata",
    [
        {"encoding": "OPUS", "sampleRate": 16000, "channels": 1},
        {"encoding": "PCM", "sampleRate": 16000, "channels": 8},
        {"encoding": "PCM", "sampleRate": 1000, "channels": 1},
        # Rates with a large ratio to 16 kHz would take a huge resampling filter.
        {"encoding": "PCM", "sampleRate": 44101, "channels": 1},
    ],
    ids=["opus", "8-channels", "1000-Hz", "44101-Hz"],
)
def test_audio_the_app_cannot_decode_is_unsupported(metadata: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedAudio, match="unsupported audio"):
        parse(frame({"kind": "AudioMetadata", "audioMetadata": metadata}))


def test_what_the_app_sends_is_what_acs_reads() -> None:
    sent = json.loads(audio_out(PCM))
    assert sent["Kind"] == "AudioData"
    assert base64.b64decode(sent["AudioData"]["Data"]) == PCM
    # The same frame read back by the app's own parser.
    assert parse(audio_out(PCM)) == AudioIn(PCM, silent=False)


def test_stop_audio() -> None:
    assert json.loads(STOP_AUDIO) == {"Kind": "StopAudio", "AudioData": None, "StopAudio": {}}
    assert parse(STOP_AUDIO) == Ignored("StopAudio")
