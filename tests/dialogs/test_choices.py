"""Reading an answer to a question that offered options (`dialogs.flows.choices`)."""

from __future__ import annotations

import pytest

from dialogs.flows.choices import AGREEMENT, pick, spelled_out
from dialogs.turn import Choice

TARGETS = [
    Choice(label="A pending order", value="order", words=["order", "pending", "package", "shipping"]),
    Choice(label="My account address", value="profile", words=["account", "address", "default", "home"]),
]
REASONS = [
    Choice(label="No longer needed", value="no longer needed", words=["no longer", "not needed", "need"]),
    Choice(label="Ordered by mistake", value="ordered by mistake", words=["mistake", "wrong", "didn't mean"]),
]
ORDERS = [
    Choice(label="#W1111111", value="#W1111111", words=["office", "chair"]),
    Choice(label="#W2222222", value="#W2222222", words=["mechanical", "keyboard", "bulb"]),
    Choice(label="#W3333333", value="#W3333333", words=["smart", "watch", "camera"]),
]


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("the first one", "order"),
        ("First.", "order"),
        ("the latter", "profile"),
        ("2", "profile"),
        ("option 1", "order"),
        ("the address", "profile"),
        ("yes the order", "order"),
        ("Yes, the account one please", "profile"),
        ("not the order, my account", "profile"),
        ("not the order", "profile"),
        ("the order, not the account", "order"),
        ("not the first one", "profile"),
    ],
)
def test_an_either_or_answered_in_the_customers_words(answer: str, value: str) -> None:
    chosen = pick(answer, TARGETS)
    assert isinstance(chosen, Choice) and chosen.value == value, chosen


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("by mistake", "ordered by mistake"),
        ("I no longer need it", "no longer needed"),
        ("don't need it anymore", "no longer needed"),
        ("not needed", "no longer needed"),
        ("i didn't mean to buy it", "ordered by mistake"),
        ("the second", "ordered by mistake"),
    ],
)
def test_options_whose_own_words_hold_a_no(answer: str, value: str) -> None:
    chosen = pick(answer, REASONS)
    assert isinstance(chosen, Choice) and chosen.value == value, chosen


@pytest.mark.parametrize("answer", ["yes", "Yes!", "ok", "ok, sure", "yeah please", "yes go ahead"])
def test_a_bare_yes_picks_nothing(answer: str) -> None:
    assert pick(answer, TARGETS) is AGREEMENT


@pytest.mark.parametrize("answer", ["hmm", "both", "what do you mean?", ""])
def test_an_answer_that_points_nowhere(answer: str) -> None:
    assert pick(answer, TARGETS) is None


def test_three_options_by_place_or_content() -> None:
    assert pick("the last one", ORDERS) == ORDERS[2]
    assert pick("the one with the keyboard", ORDERS) == ORDERS[1]
    assert pick("number three", ORDERS) == ORDERS[2]
    assert pick("the fourth", ORDERS) is None
    assert pick("not the chair", ORDERS) is None  # of three, "not this one" leaves two


def test_options_spelled_out() -> None:
    assert spelled_out(TARGETS) == "“A pending order” or “My account address”"
    assert spelled_out(ORDERS) == "“#W1111111”, “#W2222222” or “#W3333333”"
