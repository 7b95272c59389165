"""The pieces behind the order actions in `shop.retail`: the draft an action edits
(`OrderDraft`) and each check or sum as a small function.

Kept apart from the service so each rule reads on its own and the service module
stays about the read-decide-write cycle. Every refusal is a `RetailError` whose
message says what was wrong and with which id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from shop.errors import RetailError
from shop.models import Payment, PaymentMethod
from shop.store.base import JsonDict, OrderStore, Versioned

CANCEL_REASONS = frozenset({"no longer needed", "ordered by mistake"})
_CENT = Decimal("0.01")


def money(value: Any) -> Decimal:
    """An amount as exact cents (prices and balances are JSON floats in the dataset)."""
    return Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)


@dataclass
class OrderDraft:
    """One order action in progress: the order as read (with its ETag), the working copy
    the rules edit, the customer, and the gift-card balance changes the rules decided."""

    order_id: str
    read: Versioned
    order: JsonDict
    customer: Versioned | None = None
    balance_changes: dict[str, Decimal] = field(default_factory=dict)

    def payment_method(self, payment_method_id: str) -> PaymentMethod:
        methods = self.customer.doc.get("payment_methods", {}) if self.customer else {}
        method = methods.get(payment_method_id)
        if not isinstance(method, dict):
            raise RetailError(f"payment method {payment_method_id} not found for this customer")
        return cast(PaymentMethod, method)

    def is_gift_card(self, payment_method_id: str) -> bool:
        methods = self.customer.doc.get("payment_methods", {}) if self.customer else {}
        method = methods.get(payment_method_id)
        return isinstance(method, dict) and method.get("source") == "gift_card"

    def change_balance(self, payment_method_id: str, amount: Decimal) -> None:
        if self.is_gift_card(payment_method_id) and amount:
            self.balance_changes[payment_method_id] = (
                self.balance_changes.get(payment_method_id, Decimal(0)) + amount
            )

    def require_status(self, status: str, doing: str) -> None:
        current = self.order.get("status")
        if current != status:
            raise RetailError(f"order {self.order_id} is {current}: only {status} orders can be {doing}")


def price_difference(order: JsonDict, positions: Sequence[int], variants: Sequence[JsonDict]) -> Decimal:
    """New variants' prices less the replaced items' prices, in exact cents."""
    pairs = zip(positions, variants, strict=True)
    return sum((money(v["price"]) - money(order["items"][p]["price"]) for p, v in pairs), Decimal(0))


def net_payments(history: Sequence[Payment]) -> dict[str, Decimal]:
    """What each payment method has paid and not had back, in order of first payment."""
    net: dict[str, Decimal] = {}
    for row in history:
        method_id = str(row["payment_method_id"])
        amount = money(row["amount"])
        if row.get("transaction_type") == "refund":
            amount = -amount
        net[method_id] = net.get(method_id, Decimal(0)) + amount
    return {method_id: amount for method_id, amount in net.items() if amount > 0}


def check_gift_card_covers(method: PaymentMethod, amount: Decimal, what: str) -> None:
    """Refuses a gift card whose balance is below `amount` (other methods are not checked)."""
    if method.get("source") != "gift_card" or amount <= 0:
        return
    balance = money(method.get("balance", 0))
    if balance < amount:
        raise RetailError(
            f"gift card {method.get('id')} has a balance of ${balance}, not enough for {what} of ${amount}"
        )


def match_items(order: JsonDict, item_ids: Sequence[str]) -> list[int]:
    """The position in the order of each listed item id (a repeated id needs as many units)."""
    if not item_ids:
        raise RetailError("no item ids were given")
    if isinstance(item_ids, str):
        raise RetailError("item ids must be a list")
    taken: set[int] = set()
    positions = []
    for item_id in item_ids:
        position = next(
            (i for i, item in enumerate(order["items"]) if item["item_id"] == item_id and i not in taken),
            None,
        )
        if position is None:
            listed = sum(1 for item in order["items"] if item["item_id"] == item_id)
            if listed:
                raise RetailError(f"item {item_id} is in order {order['order_id']} only {listed} time(s)")
            raise RetailError(f"item {item_id} is not in order {order['order_id']}")
        taken.add(position)
        positions.append(position)
    return positions


async def replacement_variants(
    store: OrderStore, order: JsonDict, positions: Sequence[int], new_item_ids: Sequence[str]
) -> list[JsonDict]:
    """For each item to replace, the variant named in `new_item_ids`, checked to be an
    available variant of the same product."""
    if isinstance(new_item_ids, str):
        raise RetailError("new item ids must be a list")
    if len(new_item_ids) != len(positions):
        raise RetailError(
            f"each item needs exactly one replacement: {len(positions)} item(s) "
            f"but {len(new_item_ids)} new item(s)"
        )
    products: dict[str, JsonDict] = {}
    variants = []
    for position, new_item_id in zip(positions, new_item_ids, strict=True):
        item = order["items"][position]
        product_id = str(item["product_id"])
        if product_id not in products:
            product = await store.get_product(product_id)
            if product is None:
                raise RetailError(f"product {product_id} of item {item['item_id']} not found")
            products[product_id] = product.doc
        product_doc = products[product_id]
        variant = product_doc.get("variants", {}).get(new_item_id)
        name = product_doc.get("name", product_id)
        if variant is None:
            raise RetailError(
                f"item {new_item_id} is not a variant of {name}, the product of item {item['item_id']}"
            )
        if not variant.get("available"):
            raise RetailError(f"{name} variant {new_item_id} is not available")
        variants.append(variant)
    return variants
