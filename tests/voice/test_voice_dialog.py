"""What a call listens for next: the shape of answer the conversation waits for."""

from __future__ import annotations

from typing import get_args

import pytest

from dialogs.turn import DialogState, FlowState, PendingAction, expected_answer
from providers.speech.base import Expectation


def pending() -> PendingAction:
    return PendingAction(
        id="p1",
        tool="cancel_pending_order",
        arguments={"order_id": "#W3062096", "reason": "no longer needed"},
        summary="Cancel order #W3062096",
        proposed_at_turn=3,
    )


def test_nothing_asked_is_dictation() -> None:
    assert expected_answer(DialogState()) == "dictation"
    assert expected_answer(DialogState(flow=FlowState(name="order_status"))) == "dictation"


def test_an_action_waiting_for_its_yes_expects_yes_or_no() -> None:
    assert expected_answer(DialogState(pending_action=pending())) == "yes_no"
    # Even when a flow's question is open too: the confirmation comes first.
    waiting = DialogState(pending_action=pending(), flow=FlowState(name="cancel", awaiting="order_id"))
    assert expected_answer(waiting) == "yes_no"


@pytest.mark.parametrize(
    ("slot", "shape"),
    [
        ("identity", "identity"),
        ("order_id", "order_id"),
        ("confirm", "yes_no"),
        ("offer", "yes_no"),
        ("reason", "dictation"),
    ],
)
def test_an_open_question_expects_its_slots_shape(slot: str, shape: str) -> None:
    state = DialogState(flow=FlowState(name="cancel", awaiting=slot))
    assert expected_answer(state) == shape
    assert shape in get_args(Expectation)  # what recognition can listen for
