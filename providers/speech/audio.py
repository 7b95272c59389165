"""Sample conversions between the models' formats and the call's 16 kHz PCM."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import firwin, lfilter, resample_poly

from providers.speech.base import SAMPLE_RATE


def pcm_to_float(pcm: bytes) -> np.ndarray:
    """16-bit PCM bytes to float32 samples in [-1, 1] (an odd trailing byte is dropped)."""
    usable = len(pcm) - len(pcm) % 2
    return np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def to_call_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resamples to 16 kHz with a polyphase filter (scipy's, anti-aliased)."""
    if rate == SAMPLE_RATE:
        return samples
    ratio = Fraction(SAMPLE_RATE, rate)
    return np.asarray(resample_poly(samples, ratio.numerator, ratio.denominator), dtype=np.float32)


class StreamResampler:
    """Resamples a stream that arrives in pieces (a call's 20 ms frames) as one signal.

    `resample_poly` on each piece alone pads the piece with zeros at both ends: a click
    every 20 ms (about 38 dB below the speech) that the recognizer hears as noise. Here
    the same polyphase filter as `resample_poly`'s keeps its state from piece to piece.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        ratio = Fraction(rate_out, rate_in)
        self._up, self._down = ratio.numerator, ratio.denominator
        widest = max(self._up, self._down)
        # resample_poly's own design: a Kaiser-windowed low-pass at the lower Nyquist rate.
        self._taps = firwin(20 * widest + 1, 1.0 / widest, window=("kaiser", 5.0)) * self._up
        self._state = np.zeros(len(self._taps) - 1)
        self._phase = 0  # where the next output sample falls in the next piece's upsampled run

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        upsampled = np.zeros(len(samples) * self._up)
        upsampled[:: self._up] = samples
        filtered, self._state = lfilter(self._taps, 1.0, upsampled, zi=self._state)
        out = filtered[self._phase :: self._down]
        self._phase = (self._phase - len(upsampled)) % self._down
        return np.asarray(out, dtype=np.float32)
