"""Endpointing: where a caller's turn starts and ends, from per-window speech
probabilities (a VAD's). Pure logic, so it is tested without audio."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Segment(Enum):
    SILENCE = "silence"  # nobody is speaking
    STARTED = "started"  # this window starts a turn
    SPEECH = "speech"  # inside a turn (pauses included)
    ENDED = "ended"  # this window ends the turn


@dataclass(frozen=True)
class Endpointing:
    # Two windows in a row (64 ms with silero's 32 ms windows) start a turn: a click or
    # a breath is one window, a word is several.
    start_windows: int = 2
    speech_threshold: float = 0.5
    # Hysteresis: inside a turn, a window counts as silence only well below the start level.
    silence_threshold: float = 0.35
    # Silence that ends a turn: shorter cuts callers off between name and zip code,
    # longer is heard as a slow bot.
    end_silence_s: float = 0.5
    # A turn longer than this is ended anyway (a caller reading a list, or a noisy line).
    max_turn_s: float = 20.0


class Segmenter:
    def __init__(self, window_s: float, endpointing: Endpointing) -> None:
        self._window_s = window_s
        self._config = endpointing
        self._in_turn = False
        self._voiced_run = 0
        self._silent_s = 0.0
        self._turn_s = 0.0

    @property
    def trailing_silence_s(self) -> float:
        """How long the turn that just ended had been silent (endpointing's own delay)."""
        return self._silent_s

    def push(self, probability: float) -> Segment:
        config = self._config
        if not self._in_turn:
            self._voiced_run = self._voiced_run + 1 if probability >= config.speech_threshold else 0
            if self._voiced_run >= config.start_windows:
                self._in_turn = True
                self._silent_s = 0.0
                self._turn_s = self._voiced_run * self._window_s
                return Segment.STARTED
            return Segment.SILENCE
        self._turn_s += self._window_s
        self._silent_s = self._silent_s + self._window_s if probability < config.silence_threshold else 0.0
        if self._silent_s >= config.end_silence_s or self._turn_s >= config.max_turn_s:
            self._in_turn = False
            self._voiced_run = 0
            return Segment.ENDED
        return Segment.SPEECH
