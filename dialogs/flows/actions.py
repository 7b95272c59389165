"""Tasks that change an order or the account: cancel, change address, change payment
method, return. Each asks one question at a time and ends in a proposal with an exact
summary; nothing runs until the confirmation gate sees the customer's yes."""

from __future__ import annotations

import re

from dialogs.entities import cancel_reason, postal_address
from dialogs.flows.base import FlowSpec, OfflineTurn, need_order, need_verified
from dialogs.flows.slots import (
    ask_items,
    ask_payment,
    chosen_items,
    fill_items,
    fill_order,
    fill_payment,
    propose,
    restated,
)
from dialogs.turn import Choice
from dialogs.wording import describe_method, dollars, method_of, original_payment, status_words
from shop.models import Order

_PROFILE_WORDS = re.compile(
    r"\b(account|profile|default|moved|home address|address on file|my address)\b", re.I
)
_ORDER_WORDS = re.compile(r"\b(order|package|parcel|shipment|delivery|pending)\b", re.I)
# Words that name an order for sure ("the delivery address" may be the account's).
_AN_ORDER = re.compile(r"\b(orders?|package|parcel|shipment|pending)\b", re.I)
# The two answers to "a pending order, or the default address on your account?", and the
# words that point at each ("the address" is the account's: the order was "the order").
_TARGETS = (
    Choice(
        label="A pending order",
        value="order",
        words=["order", "pending", "package", "parcel", "shipment", "delivery", "shipping", "one i ordered"],
    ),
    Choice(
        label="My account address",
        value="profile",
        words=["account", "address", "default", "profile", "home", "on file", "future", "moved"],
    ),
)
# The shop's two cancellation reasons (`shop.rules.CANCEL_REASONS`), as the customer says them.
_REASONS = (
    Choice(
        label="No longer needed",
        value="no longer needed",
        words=["no longer", "not needed", "need", "anymore", "changed my mind", "want", "cheaper"],
    ),
    Choice(
        label="Ordered by mistake",
        value="ordered by mistake",
        words=["mistake", "accident", "accidentally", "wrong", "error", "didn't mean", "duplicate", "twice"],
    ),
)


# -- cancel --------------------------------------------------------------------------------------


def _not_cancellable(order: Order) -> tuple[str, str | None]:
    text = (
        f"Order {order['order_id']} is {status_words(order['status'])}, so it can't be cancelled: "
        "only pending orders can."
    )
    if order["status"] == "delivered":
        return f"{text} Would you like to return items from it instead?", "return_items"
    return text, None


async def fill_cancel(turn: OfflineTurn) -> bool:
    changed = fill_order(turn)
    reason = cancel_reason(turn.text)
    if reason and restated(turn, "reason", reason):
        turn.slots["reason"] = reason
        changed = True
    return changed


async def run_cancel(turn: OfflineTurn) -> None:
    if not await need_verified(turn):
        return
    order = await need_order(
        turn,
        {"pending"},
        _not_cancellable,
        "You have no pending orders, so there is nothing to cancel. "
        "Orders can be cancelled only before they ship.",
        "Which order would you like to cancel?",
    )
    if order is None:
        return
    if not turn.slots.get("reason"):
        turn.ask(
            "reason",
            f"Can I ask why you're cancelling order {order['order_id']}: you no longer need it, "
            "or it was ordered by mistake?",
            choices=_REASONS,
        )
        return
    result = await propose(
        turn, "cancel_pending_order", {"order_id": order["order_id"], "reason": turn.slots["reason"]}
    )
    if not result.ok:
        turn.end_flow()


# -- address ------------------------------------------------------------------------------------


async def fill_address(turn: OfflineTurn) -> bool:
    changed = fill_order(turn)
    if changed:
        turn.slots["target"] = "order"
    # A request names the account or an order; an answer to "a pending order, or your
    # account?" is read against that question's options (`dialogs.flows.choices`).
    if not turn.slots.get("target") and turn.flow.awaiting != "target":
        account, order = _PROFILE_WORDS.search(turn.text), _ORDER_WORDS.search(turn.text)
        if account and not order:
            turn.slots["target"], changed = "profile", True
        elif _AN_ORDER.search(turn.text) and not account:
            turn.slots["target"], changed = "order", True
    address = postal_address(turn.text)
    if address and restated(turn, "address", address):
        turn.slots["address"], changed = address, True
    return changed


async def run_address(turn: OfflineTurn) -> None:
    if not await need_verified(turn):
        return
    target = turn.slots.get("target")
    if target is None:
        turn.ask(
            "target",
            "Should I change the shipping address of a pending order, "
            "or the default address on your account?",
            choices=_TARGETS,
        )
        return
    order = None
    if target == "order":
        order = await need_order(
            turn,
            {"pending"},
            lambda o: (
                f"Order {o['order_id']} is {status_words(o['status'])}, so its address can't be changed: "
                "only pending orders can be redirected.",
                None,
            ),
            "You have no pending orders, so there is no shipping address I can change. "
            "I can update the default address on your account instead.",
            "Which order should go to the new address?",
        )
        if order is None:
            return
    address = turn.slots.get("address")
    if address is None:
        asked_before = turn.flow.awaiting == "address"
        turn.ask(
            "address",
            ("I couldn't read that as an address. " if asked_before else "")
            + "What's the new address? Please send it in one message, like: "
            "123 Main St, Apt 4, Austin, TX 78701.",
        )
        return
    if order is not None:
        result = await propose(
            turn, "modify_pending_order_address", {"order_id": order["order_id"], "address": address}
        )
    else:
        result = await propose(turn, "modify_user_address", {"address": address})
    if not result.ok:
        turn.end_flow()


# -- payment method ----------------------------------------------------------------------------


async def fill_payment_change(turn: OfflineTurn) -> bool:
    changed = fill_order(turn)
    order_id = turn.slots.get("order_id")
    order = (await turn.order(order_id)).data if order_id else None
    current = original_payment(order)[0] if order else ""
    return await fill_payment(turn, None, exclude=current) or changed


async def run_payment_change(turn: OfflineTurn) -> None:
    if not await need_verified(turn):
        return
    order = await need_order(
        turn,
        {"pending"},
        lambda o: (
            f"Order {o['order_id']} is {status_words(o['status'])}, so its payment method can't be changed: "
            "only pending orders can.",
            None,
        ),
        "You have no pending orders, so there is no payment I can change.",
        "Which order would you like to pay differently?",
    )
    customer = await turn.customer()
    if order is None or customer is None:
        return
    current_id, amount = original_payment(order)
    method_id = turn.slots.get("payment_method_id")
    if method_id is None or method_id == current_id:
        current = describe_method(method_of(customer, current_id), current_id)
        ask_payment(
            turn,
            customer,
            f"Order {order['order_id']} ({dollars(amount)}) is paid with your {current}. "
            "Which method should pay for it instead?",
            exclude=current_id,
        )
        return
    result = await propose(
        turn, "modify_pending_order_payment", {"order_id": order["order_id"], "payment_method_id": method_id}
    )
    if not result.ok:
        # Usually a gift card too small: keep the order, ask for another method.
        turn.slots.pop("payment_method_id", None)
        ask_payment(turn, customer, "Which other method would you like to use?", exclude=current_id)


# -- return -----------------------------------------------------------------------------------


def already_requested(order: Order) -> str | None:
    """The refusal for an order that already has its one return or exchange."""
    status = order["status"]
    if status not in {"return requested", "exchange requested"}:
        return None
    kind = status.split()[0]
    return (
        f"An {kind} has already been requested for order {order['order_id']}, and only one return or "
        "exchange can be requested per order. A person can help with anything more: just ask."
    )


def _not_returnable(order: Order) -> tuple[str, str | None]:
    repeat = already_requested(order)
    if repeat:
        return repeat, None
    status = order["status"]
    text = (
        f"Order {order['order_id']} is {status_words(status)}, so it can't be returned: "
        "only delivered orders can."
    )
    if status == "pending":
        return (
            f"{text} As it hasn't shipped yet, I can cancel it instead. Would you like that?",
            "cancel_order",
        )
    return text, None


async def fill_return(turn: OfflineTurn) -> bool:
    changed = fill_order(turn)
    order_id = turn.slots.get("order_id")
    order = (await turn.order(order_id)).data if order_id else None
    if order is not None and order.get("status") == "delivered":
        changed = fill_items(turn, order) or changed
        changed = await fill_payment(turn, order) or changed
    return changed


async def run_return(turn: OfflineTurn) -> None:
    if not await need_verified(turn):
        return
    order = await need_order(
        turn,
        {"delivered"},
        _not_returnable,
        "You have no delivered orders, so there is nothing to return yet.",
        "Which order are the items from?",
    )
    customer = await turn.customer()
    if order is None or customer is None:
        return
    if not turn.slots.get("item_ids"):
        fill_items(turn, order) or fill_items(turn, order, turn.slots.get("request", ""))
    if not turn.slots.get("item_ids"):
        if len(order["items"]) == 1:
            turn.slots["item_ids"] = [order["items"][0]["item_id"]]
        else:
            ask_items(turn, order, f"Which items from order {order['order_id']} would you like to return?")
            return
    original_id = original_payment(order)[0]
    if not turn.slots.get("payment_method_id"):
        if method_of(customer, original_id) is None or turn.slots.get("payment_unknown"):
            ask_payment(
                turn, customer, "Where should the refund go: the original payment method or a gift card?"
            )
            return
        turn.slots["payment_method_id"], turn.slots["payment_defaulted"] = original_id, True
    items = chosen_items(order, turn.slots["item_ids"])
    arguments = {
        "order_id": order["order_id"],
        "item_ids": [item["item_id"] for item in items],
        "payment_method_id": turn.slots["payment_method_id"],
    }
    has_gift_card = any(
        m.get("source") == "gift_card" and m_id != original_id
        for m_id, m in (customer.get("payment_methods") or {}).items()
    )
    offer_gift_card = turn.slots.get("payment_defaulted") and has_gift_card
    note = "(If you prefer, the refund can go to your gift card instead.)" if offer_gift_card else ""
    result = await propose(turn, "return_delivered_order_items", arguments, note=note)
    if not result.ok:
        turn.slots.pop("payment_method_id", None)
        ask_payment(
            turn, customer, "The refund can go to the original payment method or a gift card. Which one?"
        )


CANCEL = FlowSpec("cancel_order", run_cancel, fill_cancel)
ADDRESS = FlowSpec("change_address", run_address, fill_address)
PAYMENT = FlowSpec("change_payment", run_payment_change, fill_payment_change)
RETURN = FlowSpec("return_items", run_return, fill_return)
