"""How orders, items, payment methods and addresses read to a customer: one wording for
action summaries, replies and cards, whichever engine speaks."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

from shop.models import AddressDoc, Customer, Order, OrderItem, Payment, PaymentMethod
from shop.rules import money

STATUS_WORDS = MappingProxyType(
    {
        "pending": "pending (not shipped yet)",
        "pending (item modified)": "pending, with items changed (not shipped yet)",
        "processed": "processed (being packed for shipping)",
        "delivered": "delivered",
        "cancelled": "cancelled",
        "return requested": "delivered, with a return requested",
        "exchange requested": "delivered, with an exchange requested",
    }
)


def dollars(amount: Any) -> str:
    value = money(amount)
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status)


def item_options(item: OrderItem) -> str:
    options = item.get("options") or {}
    return ", ".join(str(v) for v in options.values())


def describe_item(item: OrderItem, *, price: bool = False) -> str:
    """'Electric Kettle (1L, glass, black)', optionally with ' at $146.98'."""
    text = str(item.get("name", "item"))
    options = item_options(item)
    if options:
        text += f" ({options})"
    if price and "price" in item:
        text += f" at {dollars(item['price'])}"
    return text


def describe_items(items: list[OrderItem], *, price: bool = False) -> str:
    return join_words([describe_item(item, price=price) for item in items])


def describe_method(method: PaymentMethod | None, method_id: str = "") -> str:
    """'Visa ending 9212', 'PayPal', 'gift card (balance $55.00)'."""
    if not method:
        return method_id or "the payment method"
    source = method.get("source")
    if source == "credit_card":
        brand = str(method.get("brand", "card")).replace("_", " ").title()
        return f"{brand} ending {method.get('last_four', '????')}"
    if source == "gift_card":
        return f"gift card (balance {dollars(method.get('balance', 0))})"
    if source == "paypal":
        return "PayPal"
    return str(method.get("id", method_id))


def method_of(customer: Customer | None, method_id: str) -> PaymentMethod | None:
    if customer is None:
        return None
    method = (customer.get("payment_methods") or {}).get(method_id)
    return method if isinstance(method, dict) else None


def describe_address(address: AddressDoc) -> str:
    parts = [address.get("address1", ""), address.get("address2", ""), address.get("city", "")]
    state_zip = " ".join(p for p in (address.get("state", ""), address.get("zip", "")) if p)
    parts.append(state_zip)
    parts.append(address.get("country", ""))
    return ", ".join(str(p) for p in parts if p)


def original_payment(order: Order) -> tuple[str, Decimal]:
    """(method id, amount) of the order's first payment."""
    history = order.get("payment_history") or []
    if not history:
        return "", money(0)
    return str(history[0]["payment_method_id"]), money(history[0]["amount"])


def refunds(order: Order) -> list[Payment]:
    return [row for row in order.get("payment_history", []) if row.get("transaction_type") == "refund"]


def join_words(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
