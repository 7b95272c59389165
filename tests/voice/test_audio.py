"""Resampling a call's audio frame by frame, as if it were one signal."""

from __future__ import annotations

import numpy as np
from scipy.signal import resample_poly

from providers.speech.audio import StreamResampler


def a_voice_like_signal(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1700 * t)).astype(np.float32)


def test_frames_resampled_one_by_one_are_the_signal_resampled_whole() -> None:
    signal = a_voice_like_signal(1.0, 24_000)
    in_frames = StreamResampler(24_000, 16_000)
    framed = np.concatenate([in_frames(signal[i : i + 480]) for i in range(0, len(signal), 480)])
    assert len(framed) == 16_000
    # The same filter as resample_poly's, run causally: the output lags by half the filter
    # (30 taps at 48 kHz, 10 samples at 16 kHz) and is otherwise the same signal.
    whole = resample_poly(signal, 2, 3)
    lag = 10
    error = framed[lag:] - whole[: len(whole) - lag]
    assert np.max(np.abs(error[:-100])) < 1e-4


def test_frames_resampled_alone_would_click() -> None:
    """What the stream resampler is for: resample_poly per 20 ms frame pads each frame with
    zeros, a click every frame (measured against the whole signal resampled)."""
    signal = a_voice_like_signal(1.0, 24_000)
    whole = resample_poly(signal, 2, 3)
    alone = np.concatenate([resample_poly(signal[i : i + 480], 2, 3) for i in range(0, len(signal), 480)])
    assert np.max(np.abs(alone - whole)) > 0.01


def test_uneven_frames_keep_the_phase() -> None:
    signal = a_voice_like_signal(0.5, 16_000)
    up = StreamResampler(16_000, 24_000)
    sizes = [7, 320, 1, 333, 320, 17]
    pieces, start = [], 0
    while start < len(signal):
        size = sizes[len(pieces) % len(sizes)]
        pieces.append(up(signal[start : start + size]))
        start += size
    streamed = np.concatenate(pieces)
    assert len(streamed) == len(signal) * 3 // 2
    np.testing.assert_allclose(streamed, StreamResampler(16_000, 24_000)(signal), atol=1e-6)
