"""Endpointing from per-window speech probabilities, without audio. Windows of 1/8 s and
end silences in eighths keep the arithmetic exact."""

from __future__ import annotations

from providers.speech.segmenter import Endpointing, Segment, Segmenter

WINDOW_S = 0.125
VOICED, QUIET = 0.9, 0.1


def segmenter(max_turn_s: float = 20.0) -> Segmenter:
    return Segmenter(WINDOW_S, Endpointing(end_silence_s=0.5, max_turn_s=max_turn_s))


def push(segmenter: Segmenter, *probabilities: float) -> list[Segment]:
    return [segmenter.push(probability) for probability in probabilities]


def test_two_voiced_windows_in_a_row_start_a_turn() -> None:
    assert push(segmenter(), QUIET, VOICED, VOICED, VOICED) == [
        Segment.SILENCE,
        Segment.SILENCE,
        Segment.STARTED,
        Segment.SPEECH,
    ]


def test_a_lone_click_does_not_start_a_turn() -> None:
    assert set(push(segmenter(), VOICED, QUIET, VOICED, QUIET, QUIET, VOICED, QUIET)) == {Segment.SILENCE}


def test_pauses_shorter_than_the_end_silence_do_not_end_the_turn() -> None:
    ears = segmenter()
    push(ears, VOICED, VOICED)
    # Three quiet windows (0.375 s) between words, twice: still the same turn.
    assert set(push(ears, QUIET, QUIET, QUIET, VOICED, QUIET, QUIET, QUIET, VOICED)) == {Segment.SPEECH}
    # The fourth quiet window in a row makes 0.5 s: the turn is over.
    assert push(ears, QUIET, QUIET, QUIET, QUIET) == [Segment.SPEECH] * 3 + [Segment.ENDED]
    assert ears.trailing_silence_s == 0.5


def test_inside_a_turn_only_clear_silence_counts_as_silence() -> None:
    ears = segmenter()
    push(ears, VOICED, VOICED)
    # 0.4 would not start a turn (below 0.5) but does not end one either (above 0.35).
    assert set(push(ears, *[0.4] * 20)) == {Segment.SPEECH}
    assert push(ears, 0.3, 0.3, 0.3, 0.3)[-1] is Segment.ENDED


def test_a_turn_longer_than_max_turn_s_is_ended_anyway() -> None:
    ears = segmenter(max_turn_s=2.0)
    # Started after two windows (0.25 s); 14 windows more make 2 s of talking.
    heard = push(ears, *[VOICED] * 16)
    assert heard[1] is Segment.STARTED
    assert heard[2:] == [Segment.SPEECH] * 13 + [Segment.ENDED]
    assert ears.trailing_silence_s == 0.0  # cut while talking: no silence to subtract


def test_after_a_turn_the_next_needs_two_voiced_windows_again() -> None:
    ears = segmenter()
    push(ears, VOICED, VOICED, QUIET, QUIET, QUIET, QUIET)
    assert push(ears, VOICED, QUIET, VOICED, VOICED) == [
        Segment.SILENCE,
        Segment.SILENCE,
        Segment.SILENCE,
        Segment.STARTED,
    ]
    assert ears.trailing_silence_s == 0.0
