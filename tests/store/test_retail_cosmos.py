"""The key order rules against the Cosmos DB server: cancelling with a gift-card refund,
and concurrent actions on one order settled by ETags across separate documents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shop.errors import ConcurrencyConflict, RetailError
from shop.retail import RetailService
from shop.store.cosmos import CosmosStore
from tests.store.conftest import ReadRendezvous, import_orders_subset, open_cosmos
from tests.store.test_retail import (
    CARD_PAID_PENDING,
    ETHAN,
    ETHAN_GIFT,
    GIFT_PAID_PENDING,
    OMAR,
    OMAR_GIFT,
    PROCESSED,
)


@pytest.fixture
async def cosmos_retail(
    cosmos_endpoint: str, dataset: dict[str, dict[str, Any]]
) -> AsyncIterator[CosmosStore]:
    store = await open_cosmos(cosmos_endpoint)
    await import_orders_subset(store, dataset, [GIFT_PAID_PENDING, CARD_PAID_PENDING, PROCESSED])
    yield store
    await store.aclose()


async def balance(service: RetailService, user_id: str, method_id: str) -> float:
    return float((await service.get_user_details(user_id))["payment_methods"][method_id]["balance"])


async def test_cancel_on_cosmos_refunds_the_gift_card(cosmos_retail: CosmosStore) -> None:
    retail = RetailService(cosmos_retail)
    order = await retail.cancel_pending_order(GIFT_PAID_PENDING, "no longer needed", acting_user_id=ETHAN)
    assert order["status"] == "cancelled"
    assert await retail.get_order_details(GIFT_PAID_PENDING) == order
    assert await balance(retail, ETHAN, ETHAN_GIFT) == 4128.45
    with pytest.raises(RetailError, match="only pending orders can be cancelled"):
        await retail.cancel_pending_order(PROCESSED, "no longer needed")
    with pytest.raises(RetailError, match="not found"):
        await retail.cancel_pending_order(CARD_PAID_PENDING, "no longer needed", acting_user_id=ETHAN)


async def test_two_concurrent_cancels_on_cosmos_exactly_one_succeeds(cosmos_retail: CosmosStore) -> None:
    racing = RetailService(ReadRendezvous(cosmos_retail))
    results = await asyncio.gather(
        racing.cancel_pending_order(GIFT_PAID_PENDING, "no longer needed"),
        racing.cancel_pending_order(GIFT_PAID_PENDING, "ordered by mistake"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, dict | RetailError | ConcurrencyConflict) for r in results)
    retail = RetailService(cosmos_retail)
    history = (await retail.get_order_details(GIFT_PAID_PENDING))["payment_history"]
    assert [row["transaction_type"] for row in history] == ["payment", "refund"]
    assert await balance(retail, ETHAN, ETHAN_GIFT) == 4128.45


async def test_a_payment_change_racing_a_cancel_never_loses_gift_card_money(
    cosmos_retail: CosmosStore,
) -> None:
    # One debits the gift card (written first), the other refunds the card: whichever
    # loses, the balance must match the order's final payment history.
    racing = RetailService(ReadRendezvous(cosmos_retail))
    results = await asyncio.gather(
        racing.modify_pending_order_payment(CARD_PAID_PENDING, OMAR_GIFT),
        racing.cancel_pending_order(CARD_PAID_PENDING, "no longer needed"),
        return_exceptions=True,
    )
    assert not any(isinstance(r, Exception) and not isinstance(r, RetailError) for r in results), results
    retail = RetailService(cosmos_retail)
    order = await retail.get_order_details(CARD_PAID_PENDING)
    spent = sum(
        row["amount"] if row["transaction_type"] == "payment" else -row["amount"]
        for row in order["payment_history"]
        if row["payment_method_id"] == OMAR_GIFT
    )
    assert await balance(retail, OMAR, OMAR_GIFT) == round(91 - spent, 2)
