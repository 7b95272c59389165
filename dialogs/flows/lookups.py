"""Tasks that only read: an order's status and details, the customer's orders, tracking,
refunds, and the product catalogue."""

from __future__ import annotations

import re
from decimal import Decimal

from dialogs.cards import order_card, tracking_numbers
from dialogs.flows.base import FlowSpec, OfflineTurn, need_order, need_verified
from dialogs.flows.slots import chosen_items, fill_order
from dialogs.matching import mentioned_options, option_values
from dialogs.wording import (
    describe_items,
    describe_method,
    dollars,
    join_words,
    method_of,
    refunds,
    status_words,
)
from shop.models import Order, Product
from shop.rules import money


def _any_order(_: Order) -> tuple[str, str | None]:  # pragma: no cover - every status qualifies
    return "", None


async def fill_order_only(turn: OfflineTurn) -> bool:
    return fill_order(turn)


async def _which_order(turn: OfflineTurn, question: str) -> Order | None:
    if not await need_verified(turn):
        return None
    return await need_order(turn, None, _any_order, "I can't find any orders on your account.", question)


async def run_order_status(turn: OfflineTurn) -> None:
    order = await _which_order(turn, "Which order would you like me to check?")
    if order is None:
        return
    turn.end_flow()
    count = len(order["items"])
    text = (
        f"Order {order['order_id']} is {status_words(order['status'])}. "
        f"It has {count} item{'s' if count != 1 else ''}: {describe_items(order['items'])}."
    )
    tracking = tracking_numbers(order)
    if tracking and order["status"] not in {"pending", "cancelled"}:
        text += f" Tracking number: {', '.join(tracking)}."
    turn.say(text, card=order_card(order, tracking))


async def run_list_orders(turn: OfflineTurn) -> None:
    if not await need_verified(turn):
        return
    turn.end_flow()
    orders = await turn.orders()
    if not orders:
        turn.say("I can't find any orders on your account.")
        return
    plural = "s" if len(orders) != 1 else ""
    turn.say(
        f"You have {len(orders)} order{plural}:\n{turn.order_list(orders)}",
        suggestions=[o["order_id"] for o in orders[:6]],
    )


async def run_track(turn: OfflineTurn) -> None:
    order = await _which_order(turn, "Which order would you like to track?")
    if order is None:
        return
    turn.end_flow()
    result = await turn.tool("track_order", order_id=order["order_id"])
    if not result.ok:
        turn.say(f"Sorry, I can't get the tracking right now: {result.error}.")
        return
    parcels = [p for p in result.data["fulfillments"] if p["tracking_id"]]
    status = order["status"]
    if not parcels:
        if status in {"pending", "pending (item modified)"}:
            turn.say(
                f"Order {order['order_id']} hasn't shipped yet, so there's no tracking number. "
                "Orders are usually processed within 1 to 2 business days, then take 3 to 7 business days."
            )
        else:
            turn.say(f"Order {order['order_id']} is {status_words(status)} and has no tracking number.")
        return
    lines = [
        f"{', '.join(p['tracking_id'])} ({join_words([i['name'] for i in p['items']])})" for p in parcels
    ]
    label = "Tracking number" if len(lines) == 1 else "Tracking numbers"
    turn.say(
        f"Order {order['order_id']} is {status_words(status)}. {label}: {'; '.join(lines)}.",
        card=order_card(order, tracking_numbers(order)),
    )


async def run_refund_status(turn: OfflineTurn) -> None:
    order = await _which_order(turn, "Which order is the refund for?")
    customer = await turn.customer()
    if order is None or customer is None:
        return
    turn.end_flow()
    order_id, status = order["order_id"], order["status"]
    lines = [
        f"{dollars(row['amount'])} to your {describe_method(method_of(customer, row['payment_method_id']))}"
        for row in refunds(order)
    ]
    if status == "return requested":
        items = chosen_items(order, list(order.get("return_items", [])))
        total = sum((money(i["price"]) for i in items), Decimal(0))
        method_id = str(order.get("return_payment_method_id", ""))
        turn.say(
            f"The return for order {order_id} ({describe_items(items)}) is requested. The refund of "
            f"{dollars(total)} to your {describe_method(method_of(customer, method_id), method_id)} "
            "is issued "
            "once the items arrive back and are checked; gift cards get it at once, cards and PayPal "
            "within 5 to 7 business days after that."
        )
    elif lines:
        turn.say(
            f"For order {order_id} ({status_words(status)}) we've refunded {join_words(lines)}. "
            "Refunds to a gift card are available at once; to a card or PayPal they take "
            "5 to 7 business days."
        )
    else:
        turn.say(
            f"There's no refund on order {order_id}: it is {status_words(status)}. "
            "A refund is issued when an order is cancelled, or when returned items arrive back."
        )


async def run_product_info(turn: OfflineTurn) -> None:
    turn.end_flow()
    catalogue = await turn.tool("list_all_product_types")
    if not catalogue.ok:
        turn.say(f"Sorry, I can't look at the catalogue right now: {catalogue.error}.")
        return
    products: dict[str, str] = catalogue.data
    named = products_named(turn.text, products)
    if len(named) != 1:
        if await _answer_from_search(turn):
            return
        listed = (
            ", ".join(products) if not turn.channel.is_voice else ", ".join(list(products)[:8]) + " and more"
        )
        more = "" if turn.in_aside else " Which one would you like to know about?"
        turn.say(f"We sell: {listed}.{more}")
        return
    result = await turn.tool("get_product_details", product_id=products[named[0]])
    if not result.ok:
        turn.say(f"Sorry, I can't look that up right now: {result.error}.")
        return
    turn.say(_product_answer(result.data, turn.text))


def products_named(text: str, products: dict[str, str]) -> list[str]:
    """Catalogue product names the text mentions ("the kettles" names "Electric Kettle"
    and "Tea Kettle"; "the tea kettle" only the latter)."""
    said = text.lower()
    named = [
        name
        for name in products
        if re.search(rf"\b{re.escape(name.lower().split()[-1].rstrip('s'))}s?\b", said)
    ]
    return [n for n in named if n.lower() in said] or named


async def names_a_product(turn: OfflineTurn, text: str) -> bool:
    catalogue = await turn.tool("list_all_product_types")
    return catalogue.ok and bool(products_named(text, catalogue.data))


async def _answer_from_search(turn: OfflineTurn) -> bool:
    """Answers a catalogue question by meaning ("anything for hiking?", "which kettles are
    in stock?"); False when the catalogue has nothing close."""
    found = await turn.tool("search_products", query=turn.text)
    if not found.ok or not found.data:
        return False
    lines = []
    for hit in found.data:
        if hit["variants_in_stock"]:
            lines.append(
                f"**{hit['name']}**: {hit['variants_in_stock']} of {hit['variants']} options in stock, "
                f"from ${hit['price_from']}"
            )
        else:
            lines.append(f"**{hit['name']}**: out of stock right now")
    # In the middle of a task the task's own question follows: no second question.
    if turn.channel.is_voice:
        names = [hit["name"] for hit in found.data]
        more = "" if turn.in_aside else " Which one shall I tell you about?"
        turn.say(f"The closest we have: {join_words(names)}.{more}")
    else:
        more = "" if turn.in_aside else "\n\nWhich one would you like to know more about?"
        turn.say("Here's what we have that fits:\n" + "\n".join(f"- {line}" for line in lines) + more)
    return True


def _product_answer(product: Product, text: str) -> str:
    variants = list(product["variants"].values())
    in_stock = [v for v in variants if v.get("available")]
    wanted = mentioned_options(text, product)
    if wanted:
        fits = [v for v in variants if all(v["options"].get(k) == val for k, val in wanted.items())]
        fits_in_stock = [v for v in fits if v.get("available")]
        heard = ", ".join(wanted.values())
        if fits_in_stock:
            prices = sorted(money(v["price"]) for v in fits_in_stock)
            return (
                f"Yes, the {product['name']} in {heard} is in stock "
                f"({len(fits_in_stock)} variant{'s' if len(fits_in_stock) != 1 else ''}, "
                f"from {dollars(prices[0])})."
            )
        return f"Sorry, the {product['name']} in {heard} is not in stock right now."
    if not in_stock:
        return f"Sorry, the {product['name']} is out of stock in every variant right now."
    prices = sorted(money(v["price"]) for v in in_stock)
    options = "; ".join(f"{key}: {', '.join(values)}" for key, values in option_values(in_stock).items())
    return (
        f"The {product['name']} is in stock in {len(in_stock)} of {len(variants)} variants, "
        f"from {dollars(prices[0])} to {dollars(prices[-1])}. In stock: {options}."
    )


ORDER_STATUS = FlowSpec("order_status", run_order_status, fill_order_only)
LIST_ORDERS = FlowSpec("list_orders", run_list_orders, fill_order_only)
TRACK = FlowSpec("track_shipment", run_track, fill_order_only)
REFUND_STATUS = FlowSpec("refund_status", run_refund_status, fill_order_only)
PRODUCT_INFO = FlowSpec("product_info", run_product_info, fill_order_only)
