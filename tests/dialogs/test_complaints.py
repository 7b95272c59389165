"""Telling complaints apart and writing up the case (`dialogs.flows.chat`, `complaints`)."""

from __future__ import annotations

import pytest

from dialogs import OfflineResources
from dialogs.flows.chat import complaint_intent, lacks_complaint_cue
from dialogs.flows.complaints import case
from shop.models import Order


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("it was marked as delivered but I never got it", "not_received"),
        ("the parcel was marked as delivered yesterday", None),  # says no problem
        ("my order never arrived", "not_received"),
        ("you billed me twice for this", "charged_twice"),
        ("it came smashed", "damaged_item"),
        ("you sent the wrong size", "wrong_item"),
        ("the delivery driver was really rude to me", "complaint"),
        ("I ordered the wrong size, can I swap it", None),  # the customer's own slip
        ("where is my order", None),
    ],
)
def test_complaints_said_in_so_many_words(text: str, intent: str | None) -> None:
    assert complaint_intent(text) == intent


@pytest.mark.parametrize(
    ("intent", "text"),
    [
        ("damaged_item", "great, both arrived fine. the keyboard is excellent"),
        ("late_delivery", "nice, that's earlier than I expected"),
        ("not_received", "oh it says delivered, my husband took it in"),
        ("wrong_item", "I ordered the wrong colour"),
        ("charged_twice", "I paid with my visa"),
    ],
)
def test_a_guess_of_a_complaint_the_message_does_not_make(intent: str, text: str) -> None:
    assert lacks_complaint_cue(intent, text)


def test_a_guess_the_message_backs() -> None:
    assert not lacks_complaint_cue("damaged_item", "the lid came cracked")
    assert not lacks_complaint_cue("late_delivery", "it's still not here")
    assert not lacks_complaint_cue("order_status", "anything at all")  # only complaints have cues


def test_the_case_names_the_complaint_the_order_and_the_policy() -> None:
    order: Order = {  # type: ignore[typeddict-item]
        "order_id": "#W1234567",
        "status": "delivered",
        "items": [{"name": "Electric Kettle", "options": {"color": "black"}}],
        "fulfillments": [{"tracking_id": ["111222333444"], "item_ids": []}],
    }
    written = case(
        "parcel marked delivered but not received", order, ["marked delivered: monday", ""], "investigate"
    )
    assert written == (
        "complaint: parcel marked delivered but not received. order #W1234567 (delivered): Electric Kettle "
        "(black); tracking 111222333444. marked delivered: monday. policy: investigate"
    )


@pytest.mark.parametrize(
    ("document", "section"),
    [
        ("lost-parcels", "Parcel marked delivered but not received"),
        ("lost-parcels", "How long an investigation takes"),
        ("lost-parcels", "Late deliveries"),
        ("damaged-items", "Replacement or refund"),
        ("payments", "A charge that appears twice"),
    ],
)
def test_the_sections_the_flows_cite_exist(
    offline_resources: OfflineResources, document: str, section: str
) -> None:
    assert any(p.document == document and p.section == section for p in offline_resources.knowledge.passages)


async def test_the_new_policies_answer_questions(offline_resources: OfflineResources) -> None:
    answer = await offline_resources.knowledge.answer(
        "my parcel says delivered but I can't find it, what do I do?"
    )
    assert answer is not None and answer.passage.document == "lost-parcels"
    answer = await offline_resources.knowledge.answer("what happens if my item arrives broken?")
    assert answer is not None and answer.passage.document == "damaged-items"
