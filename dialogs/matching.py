"""Matching what a customer says against their own data: which of their payment methods
("my gift card", "the visa ending 9212"), which items of an order ("the black kettle",
"both", "everything"), and which variant they want instead ("the blue one in size L").

Each matcher returns every candidate, so the caller can ask when more than one fits
instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType

from shop.models import Customer, OrderItem, PaymentMethod, Product, Variant

# "all" alone only as the whole answer: "the kettle, that's all" means the kettle.
_ALL_ITEMS = re.compile(
    r"\b(all of them|all the items|all items|all of it|everything|every item|whole order|entire order)\b"
    r"|^\W*all\W*(please|of them)?\W*$",
    re.I,
)
_ORIGINAL = re.compile(
    r"\b(original|same (card|method|way|one)|the one i (paid|used)|how i paid|where it came from)\b", re.I
)
_SIZE_WORDS = MappingProxyType(
    {
        "extra small": "XS",
        "small": "S",
        "medium": "M",
        "large": "L",
        "extra large": "XL",
        "xxl": "XXL",
        "double xl": "XXL",
    }
)
# Words that name no item: without this, "the" or "one" would match every product.
# fmt: off
_STOP = frozenset([
    "the", "a", "an", "my", "one", "it", "its", "this", "that", "of", "in", "with", "and", "or", "to",
    "for", "i", "want", "would", "like", "please", "item", "items", "return", "exchange", "swap",
    "change", "instead", "new", "get"
])
# fmt: on


def _words(text: str) -> set[str]:
    words = set(re.findall(r"[a-z0-9.]+", text.lower()))
    # Plural or singular, customers use either ("kettles", "headphone").
    return words | {w[:-1] for w in words if w.endswith("s") and len(w) > 3} | {w + "s" for w in words}


def payment_methods(text: str, customer: Customer, *, original_id: str = "") -> list[str]:
    """Ids of the customer's saved methods the text names, in the profile's order.

    "the original one" resolves to `original_id` when given.
    """
    methods: dict[str, PaymentMethod] = customer.get("payment_methods") or {}
    lower = text.lower()
    if original_id and _ORIGINAL.search(lower):
        return [original_id]
    digits = set(re.findall(r"(?<!\d)\d{4}(?!\d)", lower))
    found: list[str] = []
    for method_id, method in methods.items():
        source = method.get("source")
        brand = str(method.get("brand", "")).lower()
        named_gift_card = source == "gift_card" and re.search(r"gift ?card|gift|store credit|voucher", lower)
        if named_gift_card or (source == "paypal" and re.search(r"pay ?pal", lower)):
            found.append(method_id)
        elif source == "credit_card":
            last_four = str(method.get("last_four", ""))
            named = (brand and brand in lower) or re.search(r"credit|debit|\bcard\b", lower)
            if last_four in digits or (named and not digits and not re.search(r"gift ?card", lower)):
                found.append(method_id)
    return found


def items_named(text: str, items: list[OrderItem]) -> list[OrderItem]:
    """The order items the text points at: all of them for "everything" (or "both" in a
    two-item order), else the items sharing the most words (name, options) with the text."""
    if _ALL_ITEMS.search(text) or (len(items) == 2 and re.search(r"\bboth\b", text, re.I)):
        return list(items)
    words = _words(text) - _STOP
    if not words:
        return []
    scored: list[tuple[int, int, OrderItem]] = []
    for index, item in enumerate(items):
        name_words = _words(str(item.get("name", ""))) - _STOP
        option_words = set().union(*(_words(str(v)) for v in (item.get("options") or {}).values()))
        # A product-name hit counts more than an option hit: "black" alone may fit many items.
        score = 2 * len(words & name_words) + len(words & option_words)
        if score:
            scored.append((score, index, item))
    if not scored:
        return []
    best = max(score for score, _, _ in scored)
    return [item for score, _, item in scored if score == best]


@dataclass
class VariantChoice:
    """The outcome of `choose_variant`: `variant` when exactly one fits; otherwise
    `mentioned` (option values heard), `unavailable` (fitting but out of stock), and
    `ambiguous` (several fit equally well)."""

    variant: Variant | None = None
    mentioned: dict[str, str] = field(default_factory=dict)
    unavailable: bool = False
    ambiguous: list[Variant] = field(default_factory=list)


def option_values(variants: Iterable[Variant]) -> dict[str, list[str]]:
    """Option name -> its values over the variants, in first-seen order."""
    values: dict[str, list[str]] = {}
    for variant in variants:
        for key, value in (variant.get("options") or {}).items():
            bucket = values.setdefault(key, [])
            if str(value) not in bucket:
                bucket.append(str(value))
    return values


def mentioned_options(text: str, product: Product, current: OrderItem | None = None) -> dict[str, str]:
    """Option values of the product that the text names ('blue', '2L', 'size L', 'large').

    When the text names two values of one option ("the black one for a white one"), the
    value the `current` item already has is the one being replaced, so the other wins.
    """
    lower = f" {text.lower()} "
    for words, letter in sorted(_SIZE_WORDS.items(), key=lambda kv: -len(kv[0])):
        lower = re.sub(rf"\b{words}\b", f" {words} size {letter.lower()} ", lower)
    current_options = current["options"] if current else {}
    found: dict[str, str] = {}
    for key, values in option_values(product["variants"].values()).items():
        heard: list[str] = []
        # Longest first, so "2L" is not read as "L" and "light blue" not as "blue".
        for value in sorted(values, key=len, reverse=True):
            plain = value.lower()
            short = len(plain) <= 2 and plain.isalpha()
            pattern = (
                rf"\b(size|in|an?)\s+{re.escape(plain)}\b" if short else rf"(?<![\w.]){re.escape(plain)}\b"
            )
            if re.search(pattern, lower) and not any(plain in h.lower() for h in heard):
                heard.append(value)
        if len(heard) > 1:
            heard = [v for v in heard if v != current_options.get(key)] or heard
        if heard:
            found[key] = heard[0]
    return found


def choose_variant(text: str, product: Product, current: OrderItem) -> VariantChoice:
    """The variant of `product` the customer asks for instead of the `current` item:
    it has every option value they named, and otherwise keeps as much of the current
    item as it can. Only an available variant is ever chosen."""
    mentioned = mentioned_options(text, product, current)
    choice = VariantChoice(mentioned=mentioned)
    if not mentioned:
        return choice
    current_options = current.get("options") or {}
    fitting = [
        v
        for v in (product.get("variants") or {}).values()
        if all(str((v.get("options") or {}).get(k)) == val for k, val in mentioned.items())
        and v.get("item_id") != current.get("item_id")
    ]
    available = [v for v in fitting if v.get("available")]
    if not available:
        choice.unavailable = bool(fitting)
        return choice

    def kept(variant: Variant) -> int:
        return sum(1 for k, v in (variant.get("options") or {}).items() if current_options.get(k) == v)

    best = max(kept(v) for v in available)
    top = [v for v in available if kept(v) == best]
    if len(top) == 1:
        choice.variant = top[0]
    else:
        choice.ambiguous = top
    return choice
