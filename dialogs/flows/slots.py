"""Filling a flow's slots from a message, and proposing the flow's action.

Every message in a flow is read for every slot the flow uses, not only the one last
asked for, so a correction ("actually it's order #W...", "use my PayPal instead") or an
answer given early ("cancel #W... I ordered it by mistake") lands where it belongs.
Changing the order clears what depended on it (its items and their replacements).
"""

from __future__ import annotations

import re
from typing import Any

from dialogs.cards import confirm_card
from dialogs.entities import order_ids
from dialogs.flows.base import OfflineTurn, item_words
from dialogs.matching import items_named, payment_methods
from dialogs.tools.definition import ToolResult
from dialogs.turn import Choice
from dialogs.wording import describe_item, describe_method, original_payment
from shop.models import Customer, Order, OrderItem

_METHOD_WORDS = re.compile(
    r"gift ?card|pay ?pal|\bvisa\b|master ?card|\bamex\b|american express|discover|credit card|debit card",
    re.I,
)
_ADDITIVE = re.compile(r"\b(too|as well|also|plus|in addition|and the)\b", re.I)
# Slots that describe things inside one order; they mean nothing for another order.
ORDER_DEPENDENT = ("item_ids", "new_item_ids", "variant_text", "payment_method_id", "payment_defaulted")


def restated(turn: OfflineTurn, slot: str, value: Any) -> bool:
    """True when `value` is news for `slot`: different from what it holds, or repeated
    while a proposal awaited the customer's answer. A customer who repeats a detail
    instead of saying yes is still on the task, so it is proposed again, not dropped."""
    return value != turn.slots.get(slot) or turn.flow.awaiting == "confirm"


def fill_order(turn: OfflineTurn) -> bool:
    """Takes an order id from the message; True when it changed the order slot."""
    if turn.value and isinstance(turn.value.get("order_id"), str):
        found = order_ids(turn.value["order_id"], allow_bare=True)
    else:
        found = order_ids(turn.text, allow_bare=turn.flow.awaiting == "order_id")
    if not found or not restated(turn, "order_id", found[0]):
        return False
    if found[0] == turn.slots.get("order_id"):
        return True
    turn.slots["order_id"] = found[0]
    for slot in ORDER_DEPENDENT:
        turn.slots.pop(slot, None)
    return True


def take_choice(turn: OfflineTurn, slot: str, value: Any) -> None:
    """Puts an option the customer picked ("the first one") into `slot`, clearing what
    depended on the slot's old value, as the fillers do."""
    if value == turn.slots.get(slot):
        return
    turn.slots[slot] = value
    dependent = {
        "order_id": ORDER_DEPENDENT,
        "item_ids": ("new_item_ids",),
        "payment_method_id": ("payment_defaulted",),
    }.get(slot, ())
    for other in dependent:
        turn.slots.pop(other, None)


async def fill_payment(turn: OfflineTurn, order: Order | None, *, exclude: str = "") -> bool:
    """Takes a payment method the message names ("my gift card", "visa ending 9212")."""
    customer = await turn.customer()
    if customer is None:
        return False
    original = original_payment(order)[0] if order else ""
    found = [m for m in payment_methods(turn.text, customer, original_id=original) if m != exclude]
    if not found and _METHOD_WORDS.search(turn.text):
        # They named a method, just not one they have ("my visa" with only a Mastercard).
        turn.slots["payment_unknown"] = True
        turn.slots.pop("payment_method_id", None)
        return True
    if len(found) == 1 and restated(turn, "payment_method_id", found[0]):
        turn.slots["payment_method_id"] = found[0]
        turn.slots.pop("payment_defaulted", None)
        return True
    if len(found) > 1 and turn.flow.awaiting == "payment_method_id":
        # "my card" with two cards saved: ask again, offering only those.
        turn.slots["payment_choices"] = found
        return True
    return False


def fill_items(turn: OfflineTurn, order: Order | None, text: str | None = None) -> bool:
    """Takes the order items the message (or `text`) names; True when they changed."""
    if order is None:
        return False
    chosen = items_named(turn.text if text is None else text, order["items"])
    if not chosen:
        return False
    ids = [item["item_id"] for item in chosen]
    current = list(turn.slots.get("item_ids") or [])
    if current and _ADDITIVE.search(turn.text if text is None else text):
        # "the mouse too": added to what was chosen, not instead of it.
        ids = current + [i for i in ids if i not in current]
    if not restated(turn, "item_ids", ids):
        return False
    if ids == turn.slots.get("item_ids"):
        return True
    turn.slots["item_ids"] = ids
    turn.slots.pop("new_item_ids", None)
    return True


def method_choices(customer: Customer, *, exclude: str = "") -> list[tuple[str, str]]:
    """(method id, how it reads) for each saved method, except `exclude`."""
    return [
        (method_id, describe_method(method, method_id))
        for method_id, method in (customer.get("payment_methods") or {}).items()
        if method_id != exclude
    ]


def method_label(description: str) -> str:
    """A button label for a method: 'Gift card' rather than its balance sentence."""
    return "Gift card" if description.startswith("gift card") else description


def ask_payment(turn: OfflineTurn, customer: Customer, question: str, *, exclude: str = "") -> None:
    """Asks which saved method to use, listing them; ends the task when there is none."""
    choices = method_choices(customer, exclude=exclude)
    allowed = turn.slots.pop("payment_choices", None)
    if allowed:
        choices = [c for c in choices if c[0] in allowed]
    prefix = (
        "I can't find that payment method on your account. "
        if turn.slots.pop("payment_unknown", None)
        else ""
    )
    if not choices:
        turn.end_flow()
        turn.say(
            f"{prefix}There's no other payment method saved on your account that I could use here. "
            "Once you've added one to your account, just ask me again."
        )
        return
    listed = "; ".join(description for _, description in choices)
    turn.ask(
        "payment_method_id",
        f"{prefix}{question} You have: {listed}.",
        # Named methods are read by `fill_payment`; the options add "the first one".
        choices=[Choice(label=method_label(text), value=method_id) for method_id, text in choices],
    )


def ask_items(turn: OfflineTurn, order: Order, question: str, *, allow_all: bool = True) -> None:
    listed = "\n".join(f"- {describe_item(item, price=True)}" for item in order["items"])
    options = [
        Choice(label=str(item["name"]), value=[item["item_id"]], words=item_words([item]))
        for item in order["items"]
    ]
    if allow_all and len(order["items"]) > 1:
        every = [item["item_id"] for item in order["items"]]
        options.append(Choice(label="All of them", value=every, words=["all", "everything", "both"]))
    turn.ask("item_ids", f"{question}\n{listed}", choices=options)


def chosen_items(order: Order, item_ids: list[str]) -> list[OrderItem]:
    remaining = list(order["items"])
    chosen = []
    for item_id in item_ids:
        match = next((item for item in remaining if item["item_id"] == item_id), None)
        if match is not None:
            remaining.remove(match)
            chosen.append(match)
    return chosen


async def propose(turn: OfflineTurn, tool: str, arguments: dict[str, Any], *, note: str = "") -> ToolResult:
    """Asks the tools for the action; shows its exact summary with yes/no when it can
    be done (the gate then waits for the next message), or says why it cannot. `note`
    goes between the summary and the question (e.g. what else the customer could choose)."""
    result = await turn.tool(tool, **arguments)
    if result.pending is not None:
        turn.flow.awaiting = "confirm"
        turn.flow.choices = []
        extra = f" {note}" if note else ""
        turn.say(
            f"Here's what I'll do: {result.pending.summary}{extra}\n\nShall I go ahead?",
            card=confirm_card(result.pending),
            suggestions=["Yes", "No"],
        )
    else:
        turn.say(f"Sorry, I can't do that: {result.error}.")
    return result
