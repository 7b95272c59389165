"""Every order rule of the retail service, on real records of the retail dataset (a
fresh SQLite copy per test). Each refusal must leave the order and customer unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shop.errors import ConcurrencyConflict, RetailError
from shop.models import Address
from shop.retail import RetailService
from shop.store.sqlite import SqliteStore
from tests.store.conftest import ReadRendezvous

# Real records (see the comments for what makes each one useful).
GIFT_PAID_PENDING = "#W6779827"  # ethan_lopez_6291: 4079.45 from gift_card_7219486 (balance 49)
ETHAN, ETHAN_GIFT, ETHAN_CARD = "ethan_lopez_6291", "gift_card_7219486", "credit_card_9789590"
CARD_PAID_PENDING = "#W1080318"  # omar_kim_3528: 53.43 by credit_card_3577130
OMAR, OMAR_GIFT, OMAR_CARD = "omar_kim_3528", "gift_card_3749819", "credit_card_3577130"  # gift balance 91
SMALL_GIFT_PENDING, AARAV_GIFT = "#W2443586", "gift_card_2742113"  # 591.95 due, gift card holds 22
PROCESSED, DELIVERED, CANCELLED = "#W2611340", "#W4817420", "#W3220387"
RETURNABLE = "#W5866402"  # olivia_ito_3591, delivered, paid by paypal_8049766
OLIVIA_PAYPAL, OLIVIA_GIFT, OLIVIA_CARD = (
    "paypal_8049766",
    "gift_card_7794233",
    "credit_card_9753331",
)  # gift: 56
ESPRESSO_DELIVERED = "6242772310"  # 2996.03, in RETURNABLE
ESPRESSO_PENDING = "3379843752"  # 3203.76, in GIFT_PAID_PENDING
ESPRESSO_CHEAPER, ESPRESSO_DEARER = "3709608322", "3951031513"  # 2744.70 / 3289.46, available
ESPRESSO_DEAR_2 = "7407838442"  # 3081.91, available
ESPRESSO_UNAVAILABLE = "6324294385"
T_SHIRT_VARIANT = "9612497925"  # another product entirely
DUPLICATES = "#W1840144"  # delivered, holds item 8590708195 twice, paid by paypal_2306935


@pytest.fixture
async def retail(retail_sqlite: SqliteStore) -> AsyncIterator[RetailService]:
    yield RetailService(retail_sqlite)


async def snapshot(service: RetailService, order_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    order = await service.get_order_details(order_id)
    return order, await service.get_user_details(order["user_id"])


async def refused(service: RetailService, order_id: str, match: str, action: Any) -> None:
    """Asserts the action raises RetailError matching `match` and changes nothing."""
    before = await snapshot(service, order_id)
    with pytest.raises(RetailError, match=match):
        await action
    assert await snapshot(service, order_id) == before


async def gift_balance(service: RetailService, user_id: str, method_id: str) -> float:
    user = await service.get_user_details(user_id)
    return float(user["payment_methods"][method_id]["balance"])


# -- lookups -------------------------------------------------------------------------------


async def test_customers_are_found_by_email_or_name_and_zip(retail: RetailService) -> None:
    assert await retail.find_user_id_by_email("Noah.Brown7922@EXAMPLE.com") == "noah_brown_6181"
    assert await retail.find_user_id_by_name_zip("noah", "brown", "80279") == "noah_brown_6181"
    with pytest.raises(RetailError, match="no customer has that email"):
        await retail.find_user_id_by_email("nobody@example.com")
    with pytest.raises(RetailError, match="no customer has that name and zip"):
        await retail.find_user_id_by_name_zip("Noah", "Brown", "00000")


async def test_details_of_users_orders_and_products(retail: RetailService) -> None:
    user = await retail.get_user_details(ETHAN)
    assert GIFT_PAID_PENDING in user["orders"]
    order = await retail.get_order_details(PROCESSED)
    assert order["status"] == "processed" and order["user_id"] == "james_li_5688"
    shirt = await retail.get_product_details("9523456873")
    assert shirt["name"] == "T-Shirt" and T_SHIRT_VARIANT in shirt["variants"]
    with pytest.raises(RetailError, match="product 123 not found"):
        await retail.get_product_details("123")
    types = await retail.list_all_product_types()
    assert len(types) == 50 and types["T-Shirt"] == "9523456873" and list(types) == sorted(types)


async def test_tracking_lists_each_fulfilment_with_item_names(retail: RetailService) -> None:
    tracking = await retail.track_order(PROCESSED)
    assert tracking == {
        "order_id": PROCESSED,
        "status": "processed",
        "fulfillments": [
            {
                "tracking_id": ["357962501027"],
                "items": [
                    {"item_id": "6469567736", "name": "Water Bottle"},
                    {"item_id": "8426249116", "name": "Office Chair"},
                ],
            }
        ],
    }


async def test_another_customers_order_reads_as_not_found(retail: RetailService) -> None:
    with pytest.raises(RetailError, match=f"^order {PROCESSED} not found$"):
        await retail.get_order_details(PROCESSED, acting_user_id=ETHAN)
    with pytest.raises(RetailError, match=r"^order #W0000000 not found$"):
        await retail.get_order_details("#W0000000", acting_user_id=ETHAN)
    with pytest.raises(RetailError, match="not found"):
        await retail.track_order(PROCESSED, acting_user_id=ETHAN)
    with pytest.raises(RetailError, match="user james_li_5688 not found"):
        await retail.get_user_details("james_li_5688", acting_user_id=ETHAN)
    assert (await retail.get_order_details(GIFT_PAID_PENDING, acting_user_id=ETHAN))["user_id"] == ETHAN


async def test_actions_on_another_customers_order_are_refused(retail: RetailService) -> None:
    await refused(
        retail,
        CARD_PAID_PENDING,
        "not found",
        retail.cancel_pending_order(CARD_PAID_PENDING, "no longer needed", acting_user_id=ETHAN),
    )
    await refused(
        retail,
        RETURNABLE,
        "not found",
        retail.return_delivered_order_items(
            RETURNABLE, [ESPRESSO_DELIVERED], OLIVIA_PAYPAL, acting_user_id=OMAR
        ),
    )
    with pytest.raises(RetailError, match="not found"):
        await retail.modify_user_address(
            OMAR, address("1 Main St", "", "Austin", "TX", "USA", "78701"), acting_user_id=ETHAN
        )


# -- cancel ------------------------------------------------------------------------------------


async def test_cancel_refunds_a_gift_card_at_once(retail: RetailService) -> None:
    order = await retail.cancel_pending_order(GIFT_PAID_PENDING, "no longer needed", acting_user_id=ETHAN)
    assert order["status"] == "cancelled" and order["cancel_reason"] == "no longer needed"
    assert order["payment_history"][-1] == {
        "transaction_type": "refund",
        "amount": 4079.45,
        "payment_method_id": ETHAN_GIFT,
    }
    assert await retail.get_order_details(GIFT_PAID_PENDING) == order
    assert await gift_balance(retail, ETHAN, ETHAN_GIFT) == 4128.45


async def test_cancel_refunds_a_card_without_touching_gift_cards(retail: RetailService) -> None:
    order = await retail.cancel_pending_order(CARD_PAID_PENDING, "ordered by mistake")
    assert order["payment_history"] == [
        {"transaction_type": "payment", "amount": 53.43, "payment_method_id": OMAR_CARD},
        {"transaction_type": "refund", "amount": 53.43, "payment_method_id": OMAR_CARD},
    ]
    assert await gift_balance(retail, OMAR, OMAR_GIFT) == 91


@pytest.mark.parametrize("order_id", [PROCESSED, DELIVERED, CANCELLED])
async def test_only_pending_orders_can_be_cancelled(retail: RetailService, order_id: str) -> None:
    await refused(
        retail,
        order_id,
        "only pending orders can be cancelled",
        retail.cancel_pending_order(order_id, "no longer needed"),
    )


async def test_cancel_needs_one_of_the_two_reasons(retail: RetailService) -> None:
    await refused(
        retail,
        CARD_PAID_PENDING,
        "reason must be",
        retail.cancel_pending_order(CARD_PAID_PENDING, "found it cheaper"),
    )


async def test_cancel_after_a_payment_change_refunds_only_the_new_method(retail: RetailService) -> None:
    await retail.modify_pending_order_payment(CARD_PAID_PENDING, OMAR_GIFT)
    order = await retail.cancel_pending_order(CARD_PAID_PENDING, "no longer needed")
    assert order["payment_history"][-1] == {
        "transaction_type": "refund",
        "amount": 53.43,
        "payment_method_id": OMAR_GIFT,
    }
    assert len(order["payment_history"]) == 4
    assert await gift_balance(retail, OMAR, OMAR_GIFT) == 91


async def test_two_concurrent_cancels_of_one_order_exactly_one_succeeds(retail_sqlite: SqliteStore) -> None:
    racing = RetailService(ReadRendezvous(retail_sqlite))
    results = await asyncio.gather(
        racing.cancel_pending_order(GIFT_PAID_PENDING, "no longer needed"),
        racing.cancel_pending_order(GIFT_PAID_PENDING, "ordered by mistake"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, dict | RetailError | ConcurrencyConflict) for r in results)
    retail = RetailService(retail_sqlite)
    order = await retail.get_order_details(GIFT_PAID_PENDING)
    assert [row["transaction_type"] for row in order["payment_history"]] == ["payment", "refund"]
    assert await gift_balance(retail, ETHAN, ETHAN_GIFT) == 4128.45  # credited once


def address(address1: str, address2: str, city: str, state: str, country: str, zip_code: str) -> Address:
    return Address.model_validate(
        {
            "address1": address1,
            "address2": address2,
            "city": city,
            "state": state,
            "country": country,
            "zip": zip_code,
        }
    )


# -- pending order changes ----------------------------------------------------------------------


async def test_a_pending_orders_address_can_change(retail: RetailService) -> None:
    order = await retail.modify_pending_order_address(
        CARD_PAID_PENDING, address("1 Main St", "", "Austin", "TX", "USA", "78701"), acting_user_id=OMAR
    )
    assert order["address"] == {
        "address1": "1 Main St",
        "address2": "",
        "city": "Austin",
        "country": "USA",
        "state": "TX",
        "zip": "78701",
    }
    assert list(order["address"]) == ["address1", "address2", "city", "country", "state", "zip"]
    assert order["status"] == "pending"


async def test_address_changes_are_refused_off_pending_or_incomplete(retail: RetailService) -> None:
    await refused(
        retail,
        DELIVERED,
        "only pending orders can be modified",
        retail.modify_pending_order_address(
            DELIVERED, address("1 Main St", "", "Austin", "TX", "USA", "78701")
        ),
    )
    await refused(
        retail,
        CARD_PAID_PENDING,
        "missing address1, zip",
        retail.modify_pending_order_address(CARD_PAID_PENDING, address(" ", "", "Austin", "TX", "USA", "")),
    )


async def test_a_customers_address_changes_and_name_zip_lookup_follows(retail: RetailService) -> None:
    user = await retail.modify_user_address(
        "noah_brown_6181", address("5 Elm St", "Apt 2", "Boston", "MA", "USA", "02110")
    )
    assert user["address"]["zip"] == "02110"
    assert await retail.find_user_id_by_name_zip("Noah", "Brown", "02110") == "noah_brown_6181"


async def test_payment_moves_to_a_gift_card_that_covers_it(retail: RetailService) -> None:
    order = await retail.modify_pending_order_payment(CARD_PAID_PENDING, OMAR_GIFT, acting_user_id=OMAR)
    assert order["payment_history"][1:] == [
        {"transaction_type": "payment", "amount": 53.43, "payment_method_id": OMAR_GIFT},
        {"transaction_type": "refund", "amount": 53.43, "payment_method_id": OMAR_CARD},
    ]
    assert await gift_balance(retail, OMAR, OMAR_GIFT) == 37.57
    await refused(
        retail,
        CARD_PAID_PENDING,
        "exactly one payment",
        retail.modify_pending_order_payment(CARD_PAID_PENDING, OMAR_CARD),
    )


async def test_payment_moving_off_a_gift_card_refunds_it(retail: RetailService) -> None:
    await retail.modify_pending_order_payment(GIFT_PAID_PENDING, ETHAN_CARD)
    assert await gift_balance(retail, ETHAN, ETHAN_GIFT) == 4128.45


async def test_payment_changes_that_break_a_rule_are_refused(retail: RetailService) -> None:
    await refused(
        retail,
        CARD_PAID_PENDING,
        "already paid with",
        retail.modify_pending_order_payment(CARD_PAID_PENDING, OMAR_CARD),
    )
    await refused(
        retail,
        CARD_PAID_PENDING,
        f"payment method {ETHAN_GIFT} not found",
        retail.modify_pending_order_payment(CARD_PAID_PENDING, ETHAN_GIFT),
    )
    await refused(
        retail,
        SMALL_GIFT_PENDING,
        r"balance of \$22.00, not enough for the order total of \$591.95",
        retail.modify_pending_order_payment(SMALL_GIFT_PENDING, AARAV_GIFT),
    )
    await refused(
        retail,
        DELIVERED,
        "only pending orders can be modified",
        retail.modify_pending_order_payment(DELIVERED, "paypal_0000000"),
    )


async def test_items_change_to_a_dearer_variant_and_the_difference_is_paid(
    retail: RetailService, dataset: dict[str, dict[str, Any]]
) -> None:
    order = await retail.modify_pending_order_items(
        GIFT_PAID_PENDING, [ESPRESSO_PENDING], [ESPRESSO_DEARER], ETHAN_CARD, acting_user_id=ETHAN
    )
    variant = dataset["products"]["4354588079"]["variants"][ESPRESSO_DEARER]
    espresso = order["items"][1]
    assert (espresso["item_id"], espresso["price"], espresso["options"]) == (
        ESPRESSO_DEARER,
        3289.46,
        variant["options"],
    )
    assert order["status"] == "pending (item modified)"
    assert order["payment_history"][-1] == {
        "transaction_type": "payment",
        "amount": 85.7,
        "payment_method_id": ETHAN_CARD,
    }
    await refused(
        retail,
        GIFT_PAID_PENDING,
        "only pending orders can be modified",
        retail.modify_pending_order_items(
            GIFT_PAID_PENDING, [ESPRESSO_DEARER], [ESPRESSO_CHEAPER], ETHAN_CARD
        ),
    )


async def test_items_change_to_a_cheaper_variant_refunds_the_gift_card(retail: RetailService) -> None:
    order = await retail.modify_pending_order_items(
        GIFT_PAID_PENDING, [ESPRESSO_PENDING], [ESPRESSO_CHEAPER], ETHAN_GIFT
    )
    assert order["payment_history"][-1] == {
        "transaction_type": "refund",
        "amount": 459.06,
        "payment_method_id": ETHAN_GIFT,
    }
    assert await gift_balance(retail, ETHAN, ETHAN_GIFT) == 508.06


async def test_item_changes_that_break_a_rule_are_refused(retail: RetailService) -> None:
    order_id = GIFT_PAID_PENDING

    async def attempt(old: list[str], new: list[str], method: str, match: str) -> None:
        await refused(retail, order_id, match, retail.modify_pending_order_items(order_id, old, new, method))

    await attempt(
        [ESPRESSO_PENDING], [ESPRESSO_DEARER], ETHAN_GIFT, "gift card .* not enough for the price diff"
    )
    await attempt(
        [ESPRESSO_PENDING], [ESPRESSO_UNAVAILABLE], ETHAN_CARD, "variant 6324294385 is not available"
    )
    await attempt([ESPRESSO_PENDING], [T_SHIRT_VARIANT], ETHAN_CARD, "is not a variant of Espresso Machine")
    await attempt([ESPRESSO_DELIVERED], [ESPRESSO_CHEAPER], ETHAN_CARD, "is not in order")
    await attempt([ESPRESSO_PENDING], [], ETHAN_CARD, "exactly one replacement")
    await attempt(
        [ESPRESSO_PENDING], [ESPRESSO_CHEAPER], "credit_card_0000000", "not found for this customer"
    )
    await refused(
        retail,
        CARD_PAID_PENDING,
        "no item ids",
        retail.modify_pending_order_items(CARD_PAID_PENDING, [], [], OMAR_CARD),
    )


# -- delivered orders ------------------------------------------------------------------------------


async def test_return_to_the_original_method_or_a_gift_card(retail: RetailService) -> None:
    order = await retail.return_delivered_order_items(RETURNABLE, [ESPRESSO_DELIVERED], OLIVIA_GIFT)
    assert order["status"] == "return requested"
    assert order["return_items"] == [ESPRESSO_DELIVERED]
    assert order["return_payment_method_id"] == OLIVIA_GIFT
    assert await gift_balance(retail, "olivia_ito_3591", OLIVIA_GIFT) == 56  # refunded when it arrives


async def test_returns_that_break_a_rule_are_refused(retail: RetailService) -> None:
    await refused(
        retail,
        RETURNABLE,
        "original payment method .paypal_8049766. or a gift card",
        retail.return_delivered_order_items(RETURNABLE, [ESPRESSO_DELIVERED], OLIVIA_CARD),
    )
    await refused(
        retail,
        GIFT_PAID_PENDING,
        "only delivered orders can be returned",
        retail.return_delivered_order_items(GIFT_PAID_PENDING, [ESPRESSO_PENDING], ETHAN_GIFT),
    )
    await refused(
        retail,
        DUPLICATES,
        "8590708195 is in order #W1840144 only 2 time",
        retail.return_delivered_order_items(DUPLICATES, ["8590708195"] * 3, "paypal_2306935"),
    )


async def test_a_repeated_item_id_returns_two_units(retail: RetailService) -> None:
    order = await retail.return_delivered_order_items(
        DUPLICATES, ["8590708195", "6017636844", "8590708195"], "paypal_2306935"
    )
    assert order["return_items"] == ["6017636844", "8590708195", "8590708195"]
    await refused(
        retail,
        DUPLICATES,
        "only delivered orders",
        retail.return_delivered_order_items(DUPLICATES, ["8590708195"], "paypal_2306935"),
    )


async def test_exchange_records_items_and_the_price_difference(retail: RetailService) -> None:
    order = await retail.exchange_delivered_order_items(
        RETURNABLE, [ESPRESSO_DELIVERED], [ESPRESSO_CHEAPER], OLIVIA_GIFT, acting_user_id="olivia_ito_3591"
    )
    assert order["status"] == "exchange requested"
    assert order["exchange_items"] == [ESPRESSO_DELIVERED]
    assert order["exchange_new_items"] == [ESPRESSO_CHEAPER]
    assert order["exchange_payment_method_id"] == OLIVIA_GIFT
    assert order["exchange_price_difference"] == -251.33
    assert await gift_balance(retail, "olivia_ito_3591", OLIVIA_GIFT) == 56


async def test_exchanges_that_break_a_rule_are_refused(retail: RetailService) -> None:
    order_id = RETURNABLE

    async def attempt(new: list[str], method: str, match: str) -> None:
        await refused(
            retail,
            order_id,
            match,
            retail.exchange_delivered_order_items(order_id, [ESPRESSO_DELIVERED], new, method),
        )

    await attempt(
        [ESPRESSO_DEAR_2], OLIVIA_GIFT, r"balance of \$56.00, not enough for the price difference of \$85.88"
    )
    await attempt([ESPRESSO_UNAVAILABLE], OLIVIA_PAYPAL, "not available")
    await attempt([T_SHIRT_VARIANT], OLIVIA_PAYPAL, "not a variant of Espresso Machine")
    await attempt([ESPRESSO_CHEAPER, ESPRESSO_DEAR_2], OLIVIA_PAYPAL, "exactly one replacement")
    await refused(
        retail,
        GIFT_PAID_PENDING,
        "only delivered orders can be exchanged",
        retail.exchange_delivered_order_items(
            GIFT_PAID_PENDING, [ESPRESSO_PENDING], [ESPRESSO_CHEAPER], ETHAN_CARD
        ),
    )
    order = await retail.exchange_delivered_order_items(
        order_id, [ESPRESSO_DELIVERED], [ESPRESSO_DEAR_2], OLIVIA_PAYPAL
    )
    assert order["exchange_price_difference"] == 85.88
