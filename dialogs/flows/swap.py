"""Swapping items for another variant of the same product: on a pending order that is
a change of the order's items, on a delivered one an exchange. Customers use the two
words loosely, so both intents land here and the order's status decides which tool
applies; the summary names which one it is."""

from __future__ import annotations

from typing import Any

from dialogs.flows.actions import already_requested
from dialogs.flows.base import FlowSpec, OfflineTurn, need_order, need_verified
from dialogs.flows.slots import (
    ask_items,
    ask_payment,
    chosen_items,
    fill_items,
    fill_order,
    fill_payment,
    propose,
)
from dialogs.matching import choose_variant, mentioned_options, option_values
from dialogs.wording import describe_item, join_words, method_of, original_payment, status_words
from shop.models import Order, OrderItem, Product, Variant

_SWAPPABLE = frozenset({"pending", "delivered"})


def _not_swappable(order: Order) -> tuple[str, str | None]:
    repeat = already_requested(order)
    if repeat:
        return repeat, None
    if order["status"] == "pending (item modified)":
        return (
            f"The items of order {order['order_id']} have already been changed once, and an order's items "
            "can be changed only once. You can still cancel it while it's pending.",
            None,
        )
    return (
        f"Order {order['order_id']} is {status_words(order['status'])}, so its items can't be changed or "
        "exchanged: that works for pending orders (before they ship) and for delivered ones.",
        None,
    )


async def _order(turn: OfflineTurn) -> Order | None:
    order_id = turn.slots.get("order_id")
    if not order_id:
        return None
    result = await turn.order(order_id)
    order: Order | None = result.data if result.ok and result.data["status"] in _SWAPPABLE else None
    return order


async def fill_swap(turn: OfflineTurn) -> bool:
    changed = fill_order(turn)
    order = await _order(turn)
    awaiting = turn.flow.awaiting
    if (
        order is not None
        and awaiting != "variant"
        and (awaiting == "item_ids" or not turn.slots.get("item_ids"))
    ):
        changed = fill_items(turn, order) or changed
    if awaiting == "variant":
        turn.slots["variant_text"], changed = turn.text, True
    elif "variant_text" not in turn.slots or (awaiting == "confirm" and await _names_options(turn, order)):
        # The first message often says it all ("exchange my kettle for the white one").
        turn.slots["variant_text"] = turn.text
        if awaiting == "confirm":
            turn.slots.pop("new_item_ids", None)
            changed = True
    if order is not None:
        changed = await fill_payment(turn, order) or changed
    return changed


async def _names_options(turn: OfflineTurn, order: Order | None) -> bool:
    """True when the message names options of a chosen item ("make it the silver one")."""
    if order is None or not turn.slots.get("item_ids"):
        return False
    for item in chosen_items(order, turn.slots["item_ids"]):
        product = await turn.tool("get_product_details", product_id=str(item["product_id"]))
        if product.ok and mentioned_options(turn.text, product.data, item):
            return True
    return False


def _available_options(product: Product) -> str:
    available = [v for v in product["variants"].values() if v.get("available")]
    return "; ".join(f"{key}: {', '.join(values)}" for key, values in option_values(available).items())


async def run_swap(turn: OfflineTurn) -> None:
    if not await need_verified(turn):
        return
    order = await need_order(
        turn,
        _SWAPPABLE,
        _not_swappable,
        "You have no pending or delivered orders with items I could change or exchange.",
        "Which order is the item in?",
    )
    customer = await turn.customer()
    if order is None or customer is None:
        return
    exchanging = order["status"] == "delivered"
    verb = "exchange" if exchanging else "change"
    if not turn.slots.get("item_ids"):
        fill_items(turn, order, turn.slots.get("request", ""))
    if not turn.slots.get("item_ids"):
        if len(order["items"]) == 1:
            turn.slots["item_ids"] = [order["items"][0]["item_id"]]
        else:
            ask_items(turn, order, f"Which item in order {order['order_id']} would you like to {verb}?")
            return
    items = chosen_items(order, turn.slots["item_ids"])
    replacements: list[Any] = list(turn.slots.get("new_item_ids") or [None] * len(items))
    notes: list[str] = []
    for index, item in enumerate(items):
        if replacements[index]:
            continue
        product_result = await turn.tool("get_product_details", product_id=str(item["product_id"]))
        if not product_result.ok:
            turn.end_flow()
            turn.say(f"Sorry, I can't look that product up right now: {product_result.error}.")
            return
        product = product_result.data
        choice = choose_variant(str(turn.slots.get("variant_text", "")), product, item)
        if choice.variant is None:
            turn.slots.pop("variant_text", None)
            _ask_variant(turn, item, product, choice.unavailable, choice.ambiguous, choice.mentioned)
            turn.slots["new_item_ids"] = replacements
            return
        replacements[index] = choice.variant["item_id"]
        unasked = [
            f"{key} {value}"
            for key, value in choice.variant["options"].items()
            if key not in choice.mentioned and (item.get("options") or {}).get(key) != value
        ]
        if unasked:
            notes.append(f"The closest one in stock also has {join_words(unasked)}.")
    turn.slots["new_item_ids"] = replacements
    original_id = original_payment(order)[0]
    if not turn.slots.get("payment_method_id"):
        if method_of(customer, original_id) is None or turn.slots.get("payment_unknown"):
            ask_payment(turn, customer, "Which payment method should settle any price difference?")
            return
        turn.slots["payment_method_id"], turn.slots["payment_defaulted"] = original_id, True
    arguments = {
        "order_id": order["order_id"],
        "item_ids": [item["item_id"] for item in items],
        "new_item_ids": replacements,
        "payment_method_id": turn.slots["payment_method_id"],
    }
    tool = "exchange_delivered_order_items" if exchanging else "modify_pending_order_items"
    result = await propose(turn, tool, arguments, note=" ".join(notes))
    if not result.ok:
        if turn.slots.pop("payment_defaulted", None) and "gift card" in result.error:
            turn.slots.pop("payment_method_id", None)
            ask_payment(
                turn, customer, "Which payment method should pay the difference instead?", exclude=original_id
            )
        else:
            turn.end_flow()


def _ask_variant(
    turn: OfflineTurn,
    item: OrderItem,
    product: Product,
    unavailable: bool,
    ambiguous: list[Variant],
    mentioned: dict[str, str],
) -> None:
    if unavailable:
        heard = ", ".join(mentioned.values())
        prefix = f"Sorry, the {product['name']} in {heard} is out of stock. "
    elif ambiguous:
        prefix = "A few options fit that. "
    else:
        prefix = ""
    turn.ask(
        "variant",
        f"{prefix}What would you like instead of the {describe_item(item)}? "
        f"In stock: {_available_options(product)}.",
    )


MODIFY = FlowSpec("modify_items", run_swap, fill_swap)
EXCHANGE = FlowSpec("exchange_items", run_swap, fill_swap)
