"""Exact summaries of consequential actions, written before the customer is asked to
confirm: which order, which items, what money moves and to or from which method. Each
consequential tool in `dialogs.tools.catalog` is declared with one of these functions.

Building a summary also checks the shop's rules against the current order (status,
items, variants, gift-card balance), so a request that would be refused is refused
before the customer says yes to it. The service checks everything again when the action
runs, so a summary that went stale in the meantime still cannot do anything wrong.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dialogs.entities import normalize_order_id
from dialogs.tools.definition import ToolContext
from dialogs.wording import (
    describe_address,
    describe_item,
    describe_items,
    describe_method,
    dollars,
    method_of,
    original_payment,
)
from shop.errors import RetailError
from shop.models import Address, AddressDoc, Customer, Order, OrderItem, PaymentMethod
from shop.rules import check_gift_card_covers, money


async def cancel(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    order, customer = await _order_and_customer(ctx, arguments)
    return _cancel(order, customer, str(arguments["reason"]))


async def order_address(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    order, _ = await _order_and_customer(ctx, arguments)
    _require(order, "pending", "have its address changed")
    return (
        f"Ship order {order['order_id']} to {describe_address(_address(arguments))} "
        f"instead of {describe_address(order.get('address', {}))}."
    )


async def user_address(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    return f"Change the default address on your account to {describe_address(_address(arguments))}."


async def payment(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    order, customer = await _order_and_customer(ctx, arguments)
    return _payment(order, customer, str(arguments["payment_method_id"]))


async def return_items(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    order, customer = await _order_and_customer(ctx, arguments)
    return _return(order, customer, list(arguments["item_ids"]), str(arguments["payment_method_id"]))


async def change_items(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    order, customer = await _order_and_customer(ctx, arguments)
    return await _swap(ctx, order, customer, arguments, exchanging=False)


async def exchange_items(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    order, customer = await _order_and_customer(ctx, arguments)
    return await _swap(ctx, order, customer, arguments, exchanging=True)


async def _order_and_customer(ctx: ToolContext, arguments: dict[str, Any]) -> tuple[Order, Customer]:
    order_id = normalize_order_id(str(arguments["order_id"]))
    order = await ctx.retail.get_order_details(order_id, acting_user_id=ctx.user_id)
    customer = await ctx.retail.get_user_details(ctx.user_id, acting_user_id=ctx.user_id)
    return order, customer


def _require(order: Order, status: str, doing: str) -> None:
    current = order.get("status")
    if current != status:
        raise RetailError(f"order {order['order_id']} is {current}, and only {status} orders can {doing}")


def _address(arguments: dict[str, Any]) -> AddressDoc:
    return Address.parse(arguments["address"]).document()


def _method(customer: Customer, method_id: str) -> PaymentMethod:
    method = method_of(customer, method_id)
    if method is None:
        raise RetailError(f"payment method {method_id} is not one of the customer's saved methods")
    return method


def _items(order: Order, item_ids: list[str]) -> list[OrderItem]:
    if not item_ids:
        raise RetailError("no items were chosen")
    remaining = list(order.get("items", []))
    chosen = []
    for item_id in item_ids:
        match = next((item for item in remaining if item["item_id"] == item_id), None)
        if match is None:
            raise RetailError(f"item {item_id} is not in order {order['order_id']}")
        remaining.remove(match)
        chosen.append(match)
    return chosen


def _cancel(order: Order, customer: Customer, reason: str) -> str:
    _require(order, "pending", "be cancelled")
    net: dict[str, Decimal] = {}
    for row in order.get("payment_history", []):
        sign = -1 if row.get("transaction_type") == "refund" else 1
        key = str(row["payment_method_id"])
        net[key] = net.get(key, Decimal(0)) + sign * money(row["amount"])
    refund_text = _join_refunds(
        [
            (amount, describe_method(method_of(customer, key), key))
            for key, amount in net.items()
            if amount > 0
        ]
    )
    items = order.get("items", [])
    return (
        f"Cancel order {order['order_id']} ({len(items)} item{'s' if len(items) != 1 else ''}: "
        f"{describe_items(items)}) because it is {reason}. {refund_text}"
    )


def _join_refunds(refunds: list[tuple[Decimal, str]]) -> str:
    if not refunds:
        return "Nothing was paid, so there is nothing to refund."
    parts = [f"{dollars(amount)} back to your {method}" for amount, method in refunds]
    return "You get " + " and ".join(parts) + "."


def _payment(order: Order, customer: Customer, method_id: str) -> str:
    _require(order, "pending", "have their payment method changed")
    if len(order.get("payment_history", [])) != 1:
        raise RetailError("the payment method can only be changed on an order with exactly one payment")
    current_id, amount = original_payment(order)
    method = _method(customer, method_id)
    if method_id == current_id:
        raise RetailError(f"order {order['order_id']} is already paid with {describe_method(method)}")
    check_gift_card_covers(method, amount, "the order total")
    old = describe_method(method_of(customer, current_id), current_id)
    return (
        f"Pay order {order['order_id']} ({dollars(amount)}) with your {describe_method(method)} "
        f"instead of your {old}; the {dollars(amount)} paid with your {old} is refunded to it."
    )


def _return(order: Order, customer: Customer, item_ids: list[str], method_id: str) -> str:
    _require(order, "delivered", "be returned")
    items = _items(order, item_ids)
    method = _method(customer, method_id)
    original_id, _ = original_payment(order)
    if method_id != original_id and method.get("source") != "gift_card":
        original = describe_method(method_of(customer, original_id), original_id)
        raise RetailError(f"a refund can only go to the original payment method ({original}) or a gift card")
    total = sum((money(item["price"]) for item in items), Decimal(0))
    return (
        f"Return from order {order['order_id']}: {describe_items(items, price=True)}. "
        f"Refund of {dollars(total)} to your {describe_method(method)} once the items arrive back; "
        "you will get an email with the return label."
    )


async def _swap(
    ctx: ToolContext, order: Order, customer: Customer, arguments: dict[str, Any], *, exchanging: bool
) -> str:
    _require(order, "delivered" if exchanging else "pending", "be exchanged" if exchanging else "be changed")
    items = _items(order, list(arguments["item_ids"]))
    new_ids = list(arguments["new_item_ids"])
    if len(new_ids) != len(items):
        raise RetailError("each item needs exactly one replacement")
    method = _method(customer, str(arguments["payment_method_id"]))
    lines, difference = [], Decimal(0)
    for item, new_id in zip(items, new_ids, strict=True):
        product = await ctx.retail.get_product_details(str(item["product_id"]))
        variant = (product.get("variants") or {}).get(new_id)
        if variant is None:
            raise RetailError(f"item {new_id} is not a variant of {product.get('name')}")
        if not variant.get("available"):
            raise RetailError(f"that {product.get('name')} variant is not available right now")
        new_item: OrderItem = {
            **item,
            "item_id": new_id,
            "price": variant["price"],
            "options": variant["options"],
        }
        lines.append(f"{describe_item(item)} for {describe_item(new_item)}")
        difference += money(variant["price"]) - money(item["price"])
    check_gift_card_covers(method, difference, "the price difference")
    verb = "Exchange" if exchanging else "Change"
    where = f"on delivered order {order['order_id']}" if exchanging else f"on order {order['order_id']}"
    method_text = describe_method(method)
    if difference > 0:
        money_text = f"You pay the difference of {dollars(difference)} with your {method_text}."
    elif difference < 0:
        money_text = f"You get the difference of {dollars(-difference)} back to your {method_text}."
    else:
        money_text = f"The price is the same, so nothing is charged (method on file: your {method_text})."
    once = (
        " Items can be exchanged only once per order."
        if exchanging
        else " An order's items can be changed only once."
    )
    return f"{verb} {where}: {'; '.join(lines)}. {money_text}{once}"
