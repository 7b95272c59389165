"""The shop's order rules, over an `OrderStore`: lookups and the actions a support agent
may take (cancel, change address or payment, change items, return, exchange).

Each public method backs a tool of the dialogs (`dialogs.tools.catalog` declares them) and
an action of the staff command line; it returns plain JSON
data, or raises `RetailError` with one specific sentence and changes nothing. Records
keep the retail dataset's shapes and field names (those of tau-bench's retail tools),
so an exported store still reads as that dataset.

Authorization: every method that takes an order or user id accepts `acting_user_id`.
The dialog layer passes the verified customer; an order of anyone else then reads as
"order not found" (its existence is not revealed). Staff tools pass None.

Concurrency: an action reads the order (and the customer, for payment methods and
gift-card balances), decides, then writes with the ETags it read, so two concurrent
actions on one order never both succeed; the loser is re-run once from a fresh read
(and then usually refused by the rules, e.g. "already cancelled").
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import cast

from shop.errors import ConcurrencyConflict, RetailError, StoreUnavailable
from shop.models import Address, Customer, Order, Product
from shop.rules import (
    CANCEL_REASONS,
    OrderDraft,
    check_gift_card_covers,
    match_items,
    money,
    net_payments,
    price_difference,
    replacement_variants,
)
from shop.store.base import JsonDict, OrderStore, Versioned

log = logging.getLogger(__name__)

# How often a gift-card credit is re-tried against concurrent writes to the customer.
_CREDIT_ATTEMPTS = 5

Plan = Callable[[OrderDraft], Awaitable[None]]


class RetailService:
    """The order rules. Construct with the app's `OrderStore`; stateless otherwise."""

    def __init__(self, store: OrderStore) -> None:
        self._store = store

    # -- lookups ---------------------------------------------------------------------------

    async def find_user_id_by_email(self, email: str) -> str:
        user_id = await self._store.find_user_id_by_email(email)
        if user_id is None:
            raise RetailError("no customer has that email address")
        return user_id

    async def find_user_id_by_name_zip(self, first_name: str, last_name: str, zip: str) -> str:
        user_id = await self._store.find_user_id_by_name_zip(first_name, last_name, zip)
        if user_id is None:
            raise RetailError("no customer has that name and zip code")
        return user_id

    async def get_user_details(self, user_id: str, *, acting_user_id: str | None = None) -> Customer:
        return cast(Customer, (await self._customer(user_id, acting_user_id)).doc)

    async def get_order_details(self, order_id: str, *, acting_user_id: str | None = None) -> Order:
        return cast(Order, (await self._order(order_id, acting_user_id)).doc)

    async def get_product_details(self, product_id: str) -> Product:
        product = await self._store.get_product(product_id)
        if product is None:
            raise RetailError(f"product {product_id} not found")
        return cast(Product, product.doc)

    async def list_all_product_types(self) -> dict[str, str]:
        return await self._store.list_product_types()

    async def track_order(self, order_id: str, *, acting_user_id: str | None = None) -> JsonDict:
        order = (await self._order(order_id, acting_user_id)).doc
        names = {item["item_id"]: item.get("name", "") for item in order.get("items", [])}
        return {
            "order_id": order.get("order_id", order_id),
            "status": order.get("status"),
            "fulfillments": [
                {
                    "tracking_id": list(fulfilment.get("tracking_id", [])),
                    "items": [
                        {"item_id": i, "name": names.get(i, "")} for i in fulfilment.get("item_ids", [])
                    ],
                }
                for fulfilment in order.get("fulfillments", [])
            ],
        }

    # -- actions on pending orders ------------------------------------------------------------

    async def cancel_pending_order(
        self, order_id: str, reason: str, *, acting_user_id: str | None = None
    ) -> Order:
        async def plan(action: OrderDraft) -> None:
            action.require_status("pending", "cancelled")
            if reason not in CANCEL_REASONS:
                raise RetailError("the reason must be 'no longer needed' or 'ordered by mistake'")
            history = action.order["payment_history"]
            # Refund what each method still holds (payments less earlier refunds), so an
            # order whose payment method was changed is not refunded twice.
            for method_id, amount in net_payments(history).items():
                history.append(
                    {"transaction_type": "refund", "amount": float(amount), "payment_method_id": method_id}
                )
                action.change_balance(method_id, amount)
            action.order["status"] = "cancelled"
            action.order["cancel_reason"] = reason

        return await self._run(order_id, acting_user_id, plan)

    async def modify_pending_order_address(
        self, order_id: str, address: Address | JsonDict, *, acting_user_id: str | None = None
    ) -> Order:
        new_address = Address.parse(address).document()

        async def plan(action: OrderDraft) -> None:
            action.require_status("pending", "modified")
            action.order["address"] = new_address

        return await self._run(order_id, acting_user_id, plan, with_customer=False)

    async def modify_pending_order_payment(
        self, order_id: str, payment_method_id: str, *, acting_user_id: str | None = None
    ) -> Order:
        async def plan(action: OrderDraft) -> None:
            action.require_status("pending", "modified")
            history = action.order["payment_history"]
            if len(history) != 1 or history[0].get("transaction_type") != "payment":
                raise RetailError(
                    "the payment method can only be changed on an order with exactly one payment"
                )
            method = action.payment_method(payment_method_id)
            current_id = history[0]["payment_method_id"]
            if current_id == payment_method_id:
                raise RetailError(f"the order is already paid with {payment_method_id}")
            amount = money(history[0]["amount"])
            check_gift_card_covers(method, amount, "the order total")
            history.append(
                {
                    "transaction_type": "payment",
                    "amount": float(amount),
                    "payment_method_id": payment_method_id,
                }
            )
            history.append(
                {"transaction_type": "refund", "amount": float(amount), "payment_method_id": current_id}
            )
            action.change_balance(payment_method_id, -amount)
            action.change_balance(current_id, amount)

        return await self._run(order_id, acting_user_id, plan)

    async def modify_pending_order_items(
        self,
        order_id: str,
        item_ids: list[str],
        new_item_ids: list[str],
        payment_method_id: str,
        *,
        acting_user_id: str | None = None,
    ) -> Order:
        async def plan(action: OrderDraft) -> None:
            action.require_status("pending", "modified")
            positions = match_items(action.order, item_ids)
            variants = await replacement_variants(self._store, action.order, positions, new_item_ids)
            difference = price_difference(action.order, positions, variants)
            method = action.payment_method(payment_method_id)
            check_gift_card_covers(method, difference, "the price difference")
            # A row even when the difference is zero: tau-bench records one, and the
            # history then shows the change happened and who paid for it.
            action.order["payment_history"].append(
                {
                    "transaction_type": "payment" if difference > 0 else "refund",
                    "amount": float(abs(difference)),
                    "payment_method_id": payment_method_id,
                }
            )
            action.change_balance(payment_method_id, -difference)
            for position, variant in zip(positions, variants, strict=True):
                item = action.order["items"][position]
                item["item_id"] = variant["item_id"]
                item["price"] = variant["price"]
                item["options"] = copy.deepcopy(variant["options"])
            action.order["status"] = "pending (item modified)"

        return await self._run(order_id, acting_user_id, plan)

    # -- actions on delivered orders -----------------------------------------------------------

    async def return_delivered_order_items(
        self, order_id: str, item_ids: list[str], payment_method_id: str, *, acting_user_id: str | None = None
    ) -> Order:
        async def plan(action: OrderDraft) -> None:
            action.require_status("delivered", "returned")
            method = action.payment_method(payment_method_id)
            original = action.order["payment_history"][0]["payment_method_id"]
            if payment_method_id != original and method.get("source") != "gift_card":
                raise RetailError(f"a refund goes to the original payment method ({original}) or a gift card")
            match_items(action.order, item_ids)
            action.order["status"] = "return requested"
            action.order["return_items"] = sorted(item_ids)
            action.order["return_payment_method_id"] = payment_method_id

        return await self._run(order_id, acting_user_id, plan)

    async def exchange_delivered_order_items(
        self,
        order_id: str,
        item_ids: list[str],
        new_item_ids: list[str],
        payment_method_id: str,
        *,
        acting_user_id: str | None = None,
    ) -> Order:
        async def plan(action: OrderDraft) -> None:
            action.require_status("delivered", "exchanged")
            positions = match_items(action.order, item_ids)
            variants = await replacement_variants(self._store, action.order, positions, new_item_ids)
            difference = price_difference(action.order, positions, variants)
            method = action.payment_method(payment_method_id)
            check_gift_card_covers(method, difference, "the price difference")
            # Nothing is charged yet: the difference is settled when the new items ship.
            action.order["status"] = "exchange requested"
            action.order["exchange_items"] = sorted(item_ids)
            action.order["exchange_new_items"] = sorted(new_item_ids)
            action.order["exchange_payment_method_id"] = payment_method_id
            action.order["exchange_price_difference"] = float(difference)

        return await self._run(order_id, acting_user_id, plan)

    # -- customer profile ---------------------------------------------------------------------

    async def modify_user_address(
        self, user_id: str, address: Address | JsonDict, *, acting_user_id: str | None = None
    ) -> Customer:
        new_address = Address.parse(address).document()
        for attempt in (1, 2):
            customer = await self._customer(user_id, acting_user_id)
            updated = copy.deepcopy(customer.doc)
            updated["address"] = new_address
            try:
                await self._store.put_customer(user_id, updated, etag=customer.etag)
                return cast(Customer, updated)
            except ConcurrencyConflict:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -- reading with authorization -------------------------------------------------------------

    async def _order(self, order_id: str, acting_user_id: str | None) -> Versioned:
        order = await self._store.get_order(order_id)
        # Another customer's order reads exactly like a missing one.
        if order is None or (acting_user_id is not None and order.doc.get("user_id") != acting_user_id):
            raise RetailError(f"order {order_id} not found")
        return order

    async def _customer(self, user_id: str, acting_user_id: str | None) -> Versioned:
        if acting_user_id is not None and user_id != acting_user_id:
            raise RetailError(f"user {user_id} not found")
        customer = await self._store.get_customer(user_id)
        if customer is None:
            raise RetailError(f"user {user_id} not found")
        return customer

    # -- the read-decide-write cycle ------------------------------------------------------------

    async def _run(
        self, order_id: str, acting_user_id: str | None, plan: Plan, *, with_customer: bool = True
    ) -> Order:
        for attempt in (1, 2):
            read = await self._order(order_id, acting_user_id)
            action = OrderDraft(order_id, read, copy.deepcopy(read.doc))
            if with_customer:
                action.customer = await self._customer(str(read.doc["user_id"]), None)
            await plan(action)
            try:
                await self._commit(action)
                return cast(Order, action.order)
            except ConcurrencyConflict:
                # Nothing of this attempt is left in the store (see _commit), so running
                # the rules again on fresh data is safe.
                if attempt == 2:
                    raise ConcurrencyConflict(
                        f"order {order_id} kept changing while the action ran; nothing was changed, try again"
                    ) from None
        raise AssertionError("unreachable")

    async def _commit(self, action: OrderDraft) -> None:
        """Writes the order and the balance changes, leaving nothing behind on a conflict.

        Order and customer are separate documents (separate partitions in Cosmos DB), so
        there is no transaction: when money leaves a gift card, the customer is written
        first, conditional on the balance the rules checked, and given back if the order
        write then loses; otherwise the order write decides and credits follow it.
        """
        changes = {k: v for k, v in action.balance_changes.items() if v}
        user_id = str(action.order["user_id"])
        if changes and action.customer and any(v < 0 for v in changes.values()):
            updated = _with_balances(action.customer.doc, changes)
            await self._store.put_customer(user_id, updated, etag=action.customer.etag)
            try:
                await self._store.put_order(action.order_id, action.order, etag=action.read.etag)
            except ConcurrencyConflict:
                await self._credit(user_id, {k: -v for k, v in changes.items()}, action.order_id)
                raise
            return
        await self._store.put_order(action.order_id, action.order, etag=action.read.etag)
        if changes:
            await self._credit(user_id, changes, action.order_id)

    async def _credit(self, user_id: str, changes: dict[str, Decimal], order_id: str) -> None:
        """Applies balance changes to a customer, re-reading on conflicts.

        Runs after the order is written, so it must not fail the action: adding to a
        balance commutes with any other change, hence the re-read-and-retry loop.
        """
        for _ in range(_CREDIT_ATTEMPTS):
            try:
                customer = await self._store.get_customer(user_id)
                if customer is None:
                    break
                await self._store.put_customer(
                    user_id, _with_balances(customer.doc, changes), etag=customer.etag
                )
                return
            except ConcurrencyConflict:
                continue
            except StoreUnavailable:
                break
        log.error(
            "gift-card balance change %s for %s (order %s) could not be written; apply it by hand",
            {k: str(v) for k, v in changes.items()},
            user_id,
            order_id,
        )


def _with_balances(customer: JsonDict, changes: dict[str, Decimal]) -> JsonDict:
    updated = copy.deepcopy(customer)
    for method_id, change in changes.items():
        method = updated["payment_methods"][method_id]
        method["balance"] = float(money(method.get("balance", 0)) + change)
    return updated
