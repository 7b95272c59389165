"""A parcel marked delivered that never came, and a late delivery (the shop's lost and
late parcels policy, `prompts/knowledge/lost-parcels.md`).

Marked delivered: which order, when the tracking said delivered, whether the customer
has looked around and asked the neighbours; not yet, and the policy says look first;
yes, and a person opens an investigation with the carrier (replacement or refund).
Late: a pending order has not shipped (nothing to trace; it can still be changed or
cancelled); a shipped one gets its tracking, the delivery times, and a person to trace
it if the customer wants. Each sends the customer to the other when the order's status
says it is the other problem.
"""

from __future__ import annotations

from dialogs.cards import tracking_numbers
from dialogs.flows.base import FlowSpec, OfflineTurn, need_order, need_verified
from dialogs.flows.complaints import (
    NOT_YET,
    RECEIVED,
    YES_NO,
    case,
    cite,
    fill_complaint,
    hand_over,
    sorry_first,
)
from dialogs.turn import Choice
from dialogs.wording import describe_items, status_words
from shop.models import Order

_ON_ITS_WAY = frozenset({"pending", "pending (item modified)", "processed"})
_POLICY = "Lost and late parcels policy"


# -- marked delivered, never received ----------------------------------------------------------


def _not_delivered_yet(order: Order) -> tuple[str, str | None]:
    if order["status"] in _ON_ITS_WAY:
        return (
            f"Order {order['order_id']} is {status_words(order['status'])}, so it isn't marked delivered "
            "yet. Would you like me to look into the delay?",
            "late_delivery",
        )
    return (
        f"Order {order['order_id']} is {status_words(order['status'])}, so no parcel was sent for it.",
        None,
    )


async def run_not_received(turn: OfflineTurn) -> None:
    turn.state.open_complaint = True
    sorry_first(turn, "I'm sorry your parcel hasn't reached you; let's find out what happened.")
    if not await need_verified(turn):
        return
    order = await need_order(
        turn,
        {"delivered"},
        _not_delivered_yet,
        "None of your orders is marked delivered, so there's no missing parcel I can look into.",
        "Which order is it?",
        redirect=True,
    )
    if order is None:
        return
    if not turn.slots.get("when"):
        turn.ask(
            "when",
            f"Order {order['order_id']} ({describe_items(order['items'])}) shows as delivered. "
            "When did the tracking say it was delivered?",
        )
        return
    if not turn.slots.get("searched"):
        turn.ask(
            "searched",
            "Have you been able to look around your door and mailbox, and ask your neighbours or your "
            "building's reception? Carriers sometimes leave a parcel there, or mark it delivered a little "
            "early.",
            choices=YES_NO,
        )
        return
    if turn.slots["searched"] == "no":
        turn.end_flow()
        turn.say(
            "Please have a look there first. If it still hasn't turned up 2 days after it was marked "
            "delivered, tell me and I'll pass it straight to our team: they'll open an investigation with "
            "the carrier and send you a replacement or a full refund."
            + cite(turn, "lost-parcels", "Parcel marked delivered but not received")
        )
        return
    hand_over(
        turn,
        "Thank you, that's everything our team needs. Under our lost parcel policy they'll open an "
        "investigation with the carrier, then send you a replacement or a full refund. I'm passing your "
        "case to a person now; they'll see all the details, so you won't need to repeat them."
        + cite(turn, "lost-parcels", "How long an investigation takes"),
        case(
            "parcel marked delivered but not received",
            order,
            [
                f"marked delivered (customer): {turn.slots['when']}",
                "customer has looked around and asked neighbours and reception",
            ],
            f"lost parcel: carrier investigation, then a replacement or a full refund ({_POLICY})",
        ),
    )


# -- late --------------------------------------------------------------------------------------


def _already_delivered(order: Order) -> tuple[str, str | None]:
    if order["status"] in RECEIVED:
        return (
            f"Order {order['order_id']} is marked delivered. If it never reached you, I can look into "
            "that: shall I?",
            "not_received",
        )
    return (
        f"Order {order['order_id']} is {status_words(order['status'])}, so nothing is on its way for it.",
        None,
    )


async def run_late(turn: OfflineTurn) -> None:
    turn.state.open_complaint = True
    sorry_first(turn, "I'm sorry it's taking so long; let me look into it.")
    if not await need_verified(turn):
        return
    order = await need_order(
        turn,
        _ON_ITS_WAY,
        _already_delivered,
        "None of your orders is still on its way, so there's no late delivery I can look into.",
        "Which order are you waiting for?",
        redirect=True,
    )
    if order is None:
        return
    if order["status"] != "processed":
        turn.end_flow()
        turn.say(
            f"Order {order['order_id']} hasn't shipped yet: it's {status_words(order['status'])}. Orders are "
            "usually processed within 1 to 2 business days and then take 3 to 7 business days to arrive. "
            "While it's pending you can still change it, or cancel it if you'd rather not wait."
            + cite(turn, "lost-parcels", "Late deliveries"),
            suggestions=["Cancel the order", "Talk to a person"],
        )
        return
    if not turn.slots.get("when"):
        turn.ask("when", f"Order {order['order_id']} has shipped. When were you expecting it?")
        return
    tracking = tracking_numbers(order)
    if not turn.slots.get("escalate"):
        turn.ask(
            "escalate",
            f"Order {order['order_id']} shipped"
            + (f" with tracking number {', '.join(tracking)}" if tracking else "")
            + ". Parcels take 3 to 7 business days after shipping; when one is later than that, or its "
            "tracking hasn't moved for 5 business days, our team traces it with the carrier and sends a "
            "replacement or a refund if it's lost. Would you like me to pass it to them now?"
            + cite(turn, "lost-parcels", "Late deliveries"),
            choices=(Choice(label="Yes", value="yes", words=["please", "trace", "now"]), NOT_YET),
        )
        return
    if turn.slots["escalate"] == "no":
        turn.end_flow()
        turn.say("OK. If it still hasn't arrived in a few days, just tell me and I'll pass it to our team.")
        return
    hand_over(
        turn,
        "I'm passing your case to a person now; they'll trace the parcel with the carrier and keep you "
        "posted. They'll see everything you told me.",
        case(
            "late delivery",
            order,
            [f"customer expected it: {turn.slots['when']}"],
            f"trace with the carrier; a replacement or a refund if it is lost ({_POLICY})",
        ),
    )


NOT_RECEIVED = FlowSpec("not_received", run_not_received, fill_complaint)
LATE = FlowSpec("late_delivery", run_late, fill_complaint)
