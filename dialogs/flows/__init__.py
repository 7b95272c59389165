"""The offline engine's tasks, one `FlowSpec` per intent."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from dialogs.flows.actions import ADDRESS, CANCEL, PAYMENT, RETURN
from dialogs.flows.base import FlowSpec, OfflineTurn
from dialogs.flows.chat import COMPLAINT, GOODBYE, GREETING, HUMAN, OUT_OF_SCOPE, POLICY, PRAISE
from dialogs.flows.complaints import CHARGED_TWICE
from dialogs.flows.identity import VERIFY
from dialogs.flows.item_problems import DAMAGED, WRONG_ITEM
from dialogs.flows.lookups import LIST_ORDERS, ORDER_STATUS, PRODUCT_INFO, REFUND_STATUS, TRACK
from dialogs.flows.parcels import LATE, NOT_RECEIVED
from dialogs.flows.swap import EXCHANGE, MODIFY

# Read-only: the registry is data, not state.
FLOWS: Mapping[str, FlowSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            GREETING,
            VERIFY,
            ORDER_STATUS,
            LIST_ORDERS,
            TRACK,
            CANCEL,
            ADDRESS,
            PAYMENT,
            MODIFY,
            RETURN,
            EXCHANGE,
            REFUND_STATUS,
            POLICY,
            PRODUCT_INFO,
            HUMAN,
            GOODBYE,
            PRAISE,
            COMPLAINT,
            NOT_RECEIVED,
            LATE,
            DAMAGED,
            WRONG_ITEM,
            CHARGED_TWICE,
            OUT_OF_SCOPE,
        )
    }
)

# Tasks that collect slots over several messages; the others answer in one turn.
TASKS = frozenset(
    {
        "verify_identity",
        "order_status",
        "list_orders",
        "track_shipment",
        "cancel_order",
        "change_address",
        "change_payment",
        "modify_items",
        "return_items",
        "exchange_items",
        "refund_status",
        "not_received",
        "late_delivery",
        "damaged_item",
        "wrong_item",
        "charged_twice",
    }
)

# Intents that are one task under two names (the order's status decides which tool).
_ONE_TASK = MappingProxyType({"exchange_items": "modify_items"})


def same_task(intent: str, other: str) -> bool:
    """True when the two intents are the same task ("exchange" and "change items")."""
    return _ONE_TASK.get(intent, intent) == _ONE_TASK.get(other, other)


__all__ = ["FLOWS", "TASKS", "FlowSpec", "OfflineTurn", "same_task"]
