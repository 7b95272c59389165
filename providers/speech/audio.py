"""Sample conversions between the models' formats and the call's 16 kHz PCM."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

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
