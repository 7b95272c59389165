"""Complaints about what happened after the order: a parcel marked delivered that never
came or a late one (`dialogs.flows.parcels`), an item that arrived damaged or is not
the one ordered (`dialogs.flows.item_problems`), a charge that appears twice (here).

Each flow gathers what a support agent would need (which order and item, when it was
delivered or expected, whether the customer has looked around, photos where the channel
takes them), applies the shop's policies (`prompts/knowledge/lost-parcels.md`,
`damaged-items.md`, `payments.md`) and ends in the action the policy gives: a
replacement (an exchange for the same item) or a refund (a return) through the usual
tools and confirmation, or a handoff to a person with the case written up as the
handoff reason, which is what the agent reads first. This module holds what they
share: reading the answers, writing up the case, citing the policy.
"""

from __future__ import annotations

import re

from dialogs.cards import tracking_numbers
from dialogs.flows.base import FlowSpec, OfflineTurn, need_order, need_verified
from dialogs.flows.slots import fill_items, fill_order
from dialogs.tools.gate import is_explicit_yes, is_no
from dialogs.turn import Choice
from dialogs.wording import describe_items, describe_method, dollars, join_words, method_of
from shop.models import Order

# Orders whose parcel has reached the customer (and may be missing, damaged or wrong).
RECEIVED = frozenset({"delivered", "return requested", "exchange requested"})
_WHEN = re.compile(
    r"\b(today|yesterday|tonight|morning|afternoon|evening|ago|last|this|week|weekend|days?|month|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|jan\w*|feb\w*|mar\w*|apr\w*|may|"
    r"june?|july?|aug\w*|sep\w*|oct\w*|nov\w*|dec\w*|\d{1,2}(st|nd|rd|th)|\d{1,2}/\d{1,2}|not sure|"
    r"don'?t know|no idea|can'?t remember)\b",
    re.I,
)
_SKIP = re.compile(r"\b(skip|no|none|can'?t|cannot|later|don'?t have|haven'?t got|not now)\b", re.I)
# The answers to a yes/no question, for its buttons and for answers that are not a plain
# yes or no ("I've looked everywhere", "not yet").
NOT_YET = Choice(
    label="Not yet",
    value="no",
    words=["no", "not yet", "haven't", "have not", "didn't", "i'll check", "will check", "wait", "give it"],
)
YES_NO = (
    Choice(
        label="Yes",
        value="yes",
        words=["yes", "yeah", "i have", "i did", "checked", "looked", "asked", "already", "still", "nobody"],
    ),
    NOT_YET,
)
# Whether a second charge has stayed (a duplicate) or is new (likely a pending hold).
_STILL_THERE = (
    Choice(
        label="Yes, it's still there",
        value="yes",
        words=["yes", "still", "completed", "longer", "weeks", "a week", "ages", "month", "posted"],
    ),
    Choice(
        label="No, it's recent",
        value="no",
        words=["no", "recent", "today", "yesterday", "new", "pending", "morning", "just", "only", "hours"],
    ),
)


# -- reading answers --------------------------------------------------------------------------


def _fill_yes_no(turn: OfflineTurn, slot: str) -> bool:
    """A plain yes or no to the yes/no question asked for `slot`; other wordings are
    read against the question's options by the engine."""
    if turn.flow.awaiting != slot:
        return False
    if is_explicit_yes(turn.text):
        turn.slots[slot] = "yes"
        return True
    if is_no(turn.text):
        turn.slots[slot] = "no"
        return True
    return False


def _fill_free_text(turn: OfflineTurn, slot: str, *, pattern: re.Pattern[str] | None = None) -> bool:
    """Takes the message as the answer to the open question for `slot` when it reads as
    one: it matches `pattern`, or (no pattern) it is short and asks nothing back."""
    if turn.flow.awaiting != slot or not turn.text:
        return False
    if pattern is not None:
        answers = pattern.search(turn.text) is not None
    else:
        answers = len(turn.text.split()) <= 12 and "?" not in turn.text
    if answers:
        turn.slots[slot] = turn.text.strip()
    return answers


def _fill_photos(turn: OfflineTurn) -> bool:
    if turn.value and isinstance(turn.value.get("photos"), list) and turn.value["photos"]:
        turn.slots["photos"] = [str(photo) for photo in turn.value["photos"]][:10]
        return True
    if turn.flow.awaiting == "photos" and _SKIP.search(turn.text):
        turn.slots["photos"] = []
        return True
    return False


async def fill_complaint(turn: OfflineTurn) -> bool:
    changed = fill_order(turn)
    order = await received_order(turn)
    if order is not None and (turn.flow.awaiting == "item_ids" or not turn.slots.get("item_ids")):
        changed = fill_items(turn, order) or changed
    for slot in ("searched", "escalate"):
        changed = _fill_yes_no(turn, slot) or changed
    changed = _fill_free_text(turn, "when", pattern=_WHEN) or _fill_free_text(turn, "when") or changed
    changed = _fill_free_text(turn, "received") or changed
    return _fill_photos(turn) or changed


async def received_order(turn: OfflineTurn) -> Order | None:
    """The order the complaint is about, when it has reached the customer."""
    order_id = turn.slots.get("order_id")
    if not order_id:
        return None
    result = await turn.order(order_id)
    order: Order | None = result.data if result.ok and result.data["status"] in RECEIVED else None
    return order


# -- the case for a person ---------------------------------------------------------------------


def case(what: str, order: Order | None, facts: list[str], policy: str) -> str:
    """The handoff reason: the complaint, the order, what the customer said, the policy."""
    parts = [f"complaint: {what}"]
    if order is not None:
        tracking = tracking_numbers(order)
        parts.append(
            f"order {order['order_id']} ({order['status']}): {describe_items(order['items'])}"
            + (f"; tracking {', '.join(tracking)}" if tracking else "")
        )
    parts += [fact for fact in facts if fact]
    parts.append(f"policy: {policy}")
    return ". ".join(parts)


def hand_over(turn: OfflineTurn, text: str, written_up: str) -> None:
    turn.state.open_complaint = True
    turn.request_handoff(text, written_up)


def cite(turn: OfflineTurn, document: str, section: str) -> str:
    """'_Source: ..._' for a section of a policy document ('' if it is not there)."""
    for passage in turn.knowledge.passages:
        if passage.document == document and passage.section == section:
            return f"\n\n_Source: {passage.citation}_"
    return ""


def sorry_first(turn: OfflineTurn, text: str) -> None:
    """An apology before anything is asked, the first time the complaint is heard."""
    if turn.flow.awaiting is None and not turn.flow.slots.get("apologised"):
        turn.flow.slots["apologised"] = True
        turn.say(text)


# -- a charge that appears twice ---------------------------------------------------------------


def _any_order(_: Order) -> tuple[str, str | None]:  # pragma: no cover - every status qualifies
    return "", None


async def run_charged_twice(turn: OfflineTurn) -> None:
    turn.state.open_complaint = True
    sorry_first(turn, "I'm sorry about the double charge; let's get it sorted.")
    if not await need_verified(turn):
        return
    order = await need_order(
        turn,
        None,
        _any_order,
        "I can't find any orders on your account.",
        "Which order were you charged twice for?",
    )
    customer = await turn.customer()
    if order is None:
        return
    payments = [row for row in order.get("payment_history", []) if row.get("transaction_type") == "payment"]
    lines = [
        f"{dollars(row['amount'])} to your "
        + describe_method(method_of(customer, row["payment_method_id"]), row["payment_method_id"])
        for row in payments
    ]
    policy = "a duplicate charge is refunded in full to where it came from (Payment methods policy)"
    if len(payments) > 1:
        hand_over(
            turn,
            f"I'm sorry: order {order['order_id']} shows {len(payments)} payments ({join_words(lines)}). "
            "I'm passing this to a person from our team to check with our payments team and refund what "
            "was taken twice; they'll see everything.",
            case("charged twice", order, [f"payments recorded: {join_words(lines)}"], policy),
        )
        return
    if not turn.slots.get("escalate"):
        turn.ask(
            "escalate",
            f"I can see one payment for order {order['order_id']}: {join_words(lines) or 'none'}. A second "
            "line on your statement is usually a pending authorisation, a hold your bank releases by itself "
            "within 3 to 5 business days. Has the second charge been there for more than 5 business days, "
            "or is it marked as completed?" + cite(turn, "payments", "A charge that appears twice"),
            choices=_STILL_THERE,
        )
        return
    if turn.slots["escalate"] == "no":
        turn.end_flow()
        turn.say(
            "Then it should drop off by itself within a few days. If it's still there after 5 business "
            "days, tell me and I'll pass it to our payments team."
        )
        return
    hand_over(
        turn,
        "Thank you. I'm passing this to a person from our team; they'll check the charges with our "
        "payments team and refund a duplicate in full. They'll see everything you told me.",
        case(
            "charged twice",
            order,
            [
                f"payments recorded: {join_words(lines)}",
                "customer says a second completed charge is still there after 5 business days",
            ],
            policy,
        ),
    )


CHARGED_TWICE = FlowSpec("charged_twice", run_charged_twice, fill_complaint)
