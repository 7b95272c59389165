"""Telling asides from answers in the middle of a task (`dialogs.flows.asides`)."""

from __future__ import annotations

import pytest

from dialogs.flows.asides import courtesy, is_question


@pytest.mark.parametrize(
    ("message", "opening", "rest"),
    [
        ("thanks", "thanks", ""),
        ("Thank you so much!", "thanks", ""),
        ("great, thanks", "thanks", ""),
        ("thanks, do you sell tents?", "thanks", "do you sell tents?"),
        ("hello? are you still there?", "greeting", ""),
        ("hi there, is return shipping free?", "greeting", "is return shipping free?"),
        ("ok", "ack", ""),
        ("ok, and the tracking?", None, "and the tracking?"),
        ("the black one", None, "the black one"),
        ("12 Main St, Austin, TX 78701", None, "12 Main St, Austin, TX 78701"),
        ("thanks! 12 Main St, Austin, TX 78701", "thanks", "12 Main St, Austin, TX 78701"),
    ],
)
def test_courtesy_is_split_from_what_follows(message: str, opening: str | None, rest: str) -> None:
    assert courtesy(message) == (opening, rest)


@pytest.mark.parametrize(
    ("message", "asks"),
    [
        ("is return shipping free?", True),
        ("how long does delivery take", True),
        ("do you sell tents", True),
        ("will orders I've already placed go there too?", True),
        ("the black one", False),
        ("by mistake", False),
        ("12 Main St, Austin, TX 78701", False),
    ],
)
def test_questions_are_told_from_answers(message: str, asks: bool) -> None:
    assert is_question(message) is asks
