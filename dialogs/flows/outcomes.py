"""What the customer is told once a confirmed action has run (or was refused after
their yes, when the order changed in between): from the order as the service wrote it,
so the reply states what actually happened."""

from __future__ import annotations

from decimal import Decimal

from dialogs.cards import order_card
from dialogs.flows.base import OfflineTurn
from dialogs.flows.slots import chosen_items
from dialogs.tools.definition import ToolResult
from dialogs.turn import PendingAction
from dialogs.wording import describe_address, describe_items, describe_method, dollars, join_words, method_of
from shop.models import Order, Payment
from shop.rules import money, net_payments

_ANYTHING_ELSE = "Is there anything else I can help with?"


async def report_outcome(turn: OfflineTurn, pending: PendingAction, result: ToolResult) -> None:
    if not result.ok:
        turn.say(f"Sorry, that didn't go through: {result.error}. Nothing was changed.")
        return
    data = result.data  # the order (or customer) the action wrote
    customer = await turn.customer()
    tool = pending.tool
    if tool == "modify_user_address":
        turn.say(
            f"Done. The default address on your account is now {describe_address(data['address'])}. "
            + _ANYTHING_ELSE
        )
        return
    order_id = data["order_id"]
    if tool == "cancel_pending_order":
        refunds = [
            f"{dollars(row['amount'])} to your "
            + describe_method(method_of(customer, row["payment_method_id"]))
            for row in _cancellation_refunds(data)
        ]
        money_text = f" We've refunded {join_words(refunds)}." if refunds else ""
        text = f"Done. Order {order_id} is cancelled.{money_text}"
    elif tool == "modify_pending_order_address":
        text = f"Done. Order {order_id} will now ship to {describe_address(data['address'])}."
    elif tool == "modify_pending_order_payment":
        method_id = pending.arguments["payment_method_id"]
        text = (
            f"Done. Order {order_id} is now paid with your "
            f"{describe_method(method_of(customer, method_id), method_id)}, "
            "and the previous method is refunded."
        )
    elif tool == "modify_pending_order_items":
        changed = chosen_items(data, list(pending.arguments["new_item_ids"]))
        text = (
            f"Done. Order {order_id} now has {describe_items(changed)}. "
            "Its items can't be changed again, but you can still cancel it while it's pending."
        )
    elif tool == "return_delivered_order_items":
        items = chosen_items(data, list(pending.arguments["item_ids"]))
        total = sum((money(i["price"]) for i in items), Decimal(0))
        method_id = pending.arguments["payment_method_id"]
        text = (
            f"Done. The return for order {order_id} is requested. You'll get an email with a prepaid return "
            f"label; the refund of {dollars(total)} goes to your "
            f"{describe_method(method_of(customer, method_id), method_id)} once the items arrive back."
        )
    elif tool == "exchange_delivered_order_items":
        text = (
            f"Done. The exchange for order {order_id} is requested. You'll get an email with instructions "
            "for sending the items back; the new ones ship once yours arrive."
        )
    else:
        text = "Done."
    turn.say(f"{text} {_ANYTHING_ELSE}", card=order_card(data) if tool != "cancel_pending_order" else None)


def _cancellation_refunds(order: Order) -> list[Payment]:
    """The refund rows the cancellation appended: the trailing rows that refund exactly
    what each method still held before them (an earlier payment change also left a
    refund row, which must not be reported again)."""
    history = order["payment_history"]
    for count in range(1, len(history)):
        tail = history[len(history) - count :]
        if any(row["transaction_type"] != "refund" for row in tail):
            continue
        held = net_payments(history[: len(history) - count])
        if [(m, a) for m, a in held.items()] == [(r["payment_method_id"], money(r["amount"])) for r in tail]:
            return tail
    return []
