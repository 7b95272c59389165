"""Entities from text, and matching them against a customer's own records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dialogs.entities import (
    cancel_reason,
    emails,
    normalize_order_id,
    order_ids,
    person_name,
    postal_address,
    zip_codes,
)
from dialogs.matching import choose_variant, items_named, payment_methods
from dialogs.tools.gate import is_explicit_yes, is_no


@pytest.fixture(scope="module")
def data(dataset_dir: Path) -> dict[str, Any]:
    return {
        name: json.loads((dataset_dir / f"{name}.json").read_text())
        for name in ("users", "orders", "products")
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is #W7678072?", ["#W7678072"]),
        ("order w 767 8072 please", ["#W7678072"]),
        ("W one two three four five six seven", ["#W1234567"]),
        ("double-u seven six seven eight oh seven two", ["#W7678072"]),
        ("W7678072 and #W6893533", ["#W7678072", "#W6893533"]),
        ("it's 7678072", []),
        ("I want the blue one", []),
    ],
)
def test_order_ids(text: str, expected: list[str]) -> None:
    assert order_ids(text) == expected


def test_bare_digits_count_only_when_an_order_was_asked_for() -> None:
    assert order_ids("it's 7678072", allow_bare=True) == ["#W7678072"]
    assert normalize_order_id(" w7678072 ") == "#W7678072"


def test_emails_typed_and_spoken() -> None:
    assert emails("Mine is Noah.Brown7922@Example.com.") == ["noah.brown7922@example.com"]
    assert emails("noah dot brown7922 at example dot com") == ["noah.brown7922@example.com"]
    assert emails("I'm at home") == []


def test_zip_codes_and_names() -> None:
    assert zip_codes("Noah Brown 80279") == ["80279"]
    assert zip_codes("eight oh two seven nine") == ["80279"]
    assert zip_codes("order #W7678072") == []
    name = person_name("My name is noah brown and my zip is 80279")
    assert name is not None and (name.first, name.last) == ("Noah", "Brown")
    assert person_name("hi") is None


@pytest.mark.parametrize(
    ("text", "address1", "address2", "city", "state", "zip_code"),
    [
        ("123 Main St, Apt 4, Austin, TX 78701", "123 Main St", "Apt 4", "Austin", "TX", "78701"),
        (
            "ship it to 445 Elm Street, Springfield IL 62704, USA",
            "445 Elm Street",
            "",
            "Springfield",
            "IL",
            "62704",
        ),
        (
            "986 Sunset Drive\nSuite 259\nDenver, CO 80279",
            "986 Sunset Drive",
            "Suite 259",
            "Denver",
            "CO",
            "80279",
        ),
    ],
)
def test_postal_addresses(
    text: str, address1: str, address2: str, city: str, state: str, zip_code: str
) -> None:
    assert postal_address(text) == {
        "address1": address1,
        "address2": address2,
        "city": city,
        "state": state,
        "country": "USA",
        "zip": zip_code,
    }


def test_not_an_address() -> None:
    assert postal_address("the blue house next to the park") is None
    assert postal_address("12 Park Lane, Austin, XX 78704") is None


def test_cancel_reasons() -> None:
    assert cancel_reason("I ordered it by mistake") == "ordered by mistake"
    assert cancel_reason("I dont need it anymore") == "no longer needed"
    assert cancel_reason("just because") is None


@pytest.mark.parametrize(
    "text", ["yes", "Yes, please go ahead!", "y", "confirm", "that's right", "go ahead."]
)
def test_explicit_yes(text: str) -> None:
    assert is_explicit_yes(text) and not is_no(text)


@pytest.mark.parametrize(
    "text", ["ok", "okay", "yes but use paypal", "sure thing", "yes to the kettle, no to the mouse"]
)
def test_not_an_explicit_yes(text: str) -> None:
    assert not is_explicit_yes(text)


@pytest.mark.parametrize("text", ["no", "No thanks!", "nope, don't do it", "never mind", "I changed my mind"])
def test_no(text: str) -> None:
    assert is_no(text) and not is_explicit_yes(text)


def test_an_amendment_is_not_a_no() -> None:
    assert not is_no("no, use my paypal instead")
    assert not is_no("cancel #W7678072")


def test_payment_methods_by_kind_brand_and_digits(data: dict[str, Any]) -> None:
    noah = data["users"]["noah_brown_6181"]
    assert payment_methods("my visa ending 9212", noah) == ["credit_card_7815826"]
    assert payment_methods("paypal please", noah) == ["paypal_5727330"]
    assert payment_methods("the mastercard", noah) == ["credit_card_7815826"]
    assert payment_methods("the original one", noah, original_id="paypal_5727330") == ["paypal_5727330"]
    assert payment_methods("my gift card", noah) == []


def test_items_by_name_option_or_all(data: dict[str, Any]) -> None:
    items = data["orders"]["#W7678072"]["items"]
    assert [i["name"] for i in items_named("the kettle", items)] == ["Electric Kettle"]
    assert [i["name"] for i in items_named("both the mouse and the backpack", items)] == [
        "Gaming Mouse",
        "Backpack",
    ]
    assert [i["name"] for i in items_named("everything", items)] == [
        "Electric Kettle",
        "Gaming Mouse",
        "Backpack",
    ]
    assert items_named("a surfboard", items) == []


def test_variants_keep_what_was_not_asked_to_change(data: dict[str, Any]) -> None:
    kettle_product = data["products"]["1075968781"]
    kettle = data["orders"]["#W7678072"]["items"][0]
    white = choose_variant("exchange my black kettle for the white one", kettle_product, kettle)
    assert white.variant is not None and white.variant["options"] == {
        "capacity": "1L",
        "material": "glass",
        "color": "white",
    }
    missing = choose_variant("the 2L black one", kettle_product, kettle)
    assert missing.variant is None and missing.unavailable
    nothing = choose_variant("a nicer one", kettle_product, kettle)
    assert nothing.variant is None and not nothing.mentioned


@pytest.mark.timeout(20)  # quadratic matching of this word took minutes; linear takes milliseconds
@pytest.mark.parametrize("unit", ["a.", "_-", "1+", "x-"])
def test_a_long_word_without_an_at_sign_is_no_email(unit: str) -> None:
    from dialogs.intents import mask

    word = unit * 50_000
    assert emails(word) == []
    assert mask(word) == word
    assert emails(word + " noah.brown7922@example.com") == ["noah.brown7922@example.com"]
