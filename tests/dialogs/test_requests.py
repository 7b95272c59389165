"""Cutting a message into the requests it makes (`dialogs.flows.requests`)."""

from __future__ import annotations

import pytest

from dialogs import OfflineResources
from dialogs.flows.requests import pieces, split_requests
from dialogs.intents import IntentGuess


def test_a_message_is_cut_where_a_request_may_start() -> None:
    assert pieces("what's the status of #W1234567? and has #W7654321 shipped") == [
        "what's the status of #W1234567?",
        "has #W7654321 shipped",
    ]
    assert pieces("cancel it; also where is my refund") == ["cancel it", "where is my refund"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "what's going on with #W6893533, and has #W8770097 been sent out yet?",
            [("order_status", "#W6893533"), ("order_status", "#W8770097")],
        ),
        (
            "please cancel #W8770097 and tell me where #W6893533 is",
            [("cancel_order", "#W8770097"), ("track_shipment", "#W6893533")],
        ),
        (
            "I need #W3168895 and #W5663445 cancelled",
            [("cancel_order", "#W3168895"), ("cancel_order", "#W5663445")],
        ),
        (
            "can you see where #W6893533 and #W8770097 are?",
            [("track_shipment", "#W6893533"), ("track_shipment", "#W8770097")],
        ),
        (
            "how long do refunds take? also can I return the kettle",
            [("policy_question", None), ("return_items", None)],
        ),
        (
            "what's the status of #W6893533 and please cancel it",
            [("order_status", "#W6893533"), ("cancel_order", "#W6893533")],
        ),
        (
            "cancel #W8770097, track #W6893533 and show me my order history",
            [("cancel_order", "#W8770097"), ("track_shipment", "#W6893533"), ("list_orders", None)],
        ),
    ],
)
async def test_several_requests(
    offline_resources: OfflineResources, message: str, expected: list[tuple[str, str | None]]
) -> None:
    requests = await split_requests(message, offline_resources.classifier.classify)
    assert [(r.intent, r.order_id) for r in requests] == expected


@pytest.mark.parametrize(
    "message",
    [
        "I'd like to return the kettle and the mouse",
        "hi, where is my order?",
        "thanks, and cancel it please",
        "I ordered the wrong size and want to exchange it",
        "cancel my order, I ordered it by mistake",
    ],
)
async def test_one_request_is_not_cut(offline_resources: OfflineResources, message: str) -> None:
    assert len(await split_requests(message, offline_resources.classifier.classify)) < 2


async def test_a_name_or_an_introduction_is_carried_without_asking_the_model(
    offline_resources: OfflineResources,
) -> None:
    asked: list[str] = []

    async def classify(text: str) -> IntentGuess:
        asked.append(text)
        return await offline_resources.classifier.classify(text)

    requests = await split_requests("Hi, this is Noah Smith. Cancel #W8770097 and track #W6893533", classify)
    assert [(r.intent, r.order_id) for r in requests] == [
        ("cancel_order", "#W8770097"),
        ("track_shipment", "#W6893533"),
    ]
    # The introduction stays with the first request (the name can still verify the customer).
    assert requests[0].text.startswith("this is Noah Smith.")
    assert await split_requests("thanks Amelia, that's all", classify) == []
    assert "this is Noah Smith." not in asked and "Amelia" not in asked
