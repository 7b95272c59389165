"""The contract every store keeps, run against SQLite and the Cosmos DB server alike:
records by id with ETags, customer lookups, the product list, conversation state, and
a dataset import that exports back unchanged."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shop.dataset import export_dataset, import_dataset
from shop.errors import ConcurrencyConflict, StoreUnavailable
from shop.store.base import Collection, OrderStore, Record, StateStore
from tests.store.conftest import AnyStore

CUSTOMER: dict[str, Any] = {
    "name": {"first_name": "Noah", "last_name": "Brown"},
    "address": {
        "address1": "986 Sunset Drive",
        "address2": "Suite 259",
        "city": "Denver",
        "country": "USA",
        "state": "CO",
        "zip": "80279",
    },
    "email": "noah.brown7922@example.com",
    "payment_methods": {"paypal_5727330": {"source": "paypal", "id": "paypal_5727330"}},
    "orders": ["#W7678072"],
}
ORDER: dict[str, Any] = {
    "order_id": "#W7678072",
    "user_id": "noah_brown_6181",
    "status": "pending",
    "items": [],
    "payment_history": [
        {"transaction_type": "payment", "amount": 10.5, "payment_method_id": "paypal_5727330"}
    ],
}


def product(product_id: str, name: str) -> dict[str, Any]:
    # Variant ids that look like integers: JavaScript would reorder such keys.
    variants: dict[str, Any] = {
        vid: {"item_id": vid, "options": {}, "available": True, "price": 1.0} for vid in ("9", "10", "1")
    }
    return {"name": name, "product_id": product_id, "variants": variants}


def test_both_backends_implement_both_protocols(store: AnyStore) -> None:
    assert isinstance(store, OrderStore)
    assert isinstance(store, StateStore)


async def test_missing_records_read_as_none(store: AnyStore) -> None:
    assert await store.get_customer("nobody_0000") is None
    assert await store.get_order("#W0000000") is None
    assert await store.get_product("0000000000") is None
    assert not await store.has_data()


async def test_a_written_order_reads_back_with_its_etag(store: AnyStore) -> None:
    etag = await store.put_order("#W7678072", ORDER)
    read = await store.get_order("#W7678072")
    assert read is not None
    assert read.doc == ORDER and read.etag == etag
    assert await store.has_data()


async def test_a_write_with_a_stale_etag_is_refused_and_changes_nothing(store: AnyStore) -> None:
    first = await store.put_order("#W7678072", ORDER)
    cancelled = {**ORDER, "status": "cancelled"}
    second = await store.put_order("#W7678072", cancelled, etag=first)
    assert second != first
    with pytest.raises(ConcurrencyConflict):
        await store.put_order("#W7678072", {**ORDER, "status": "delivered"}, etag=first)
    read = await store.get_order("#W7678072")
    assert read is not None and read.doc["status"] == "cancelled" and read.etag == second


async def test_a_conditional_write_to_a_missing_record_is_a_conflict(store: AnyStore) -> None:
    with pytest.raises(ConcurrencyConflict):
        await store.put_customer("nobody_0000", CUSTOMER, etag="stale")


async def test_of_two_concurrent_writes_with_one_etag_exactly_one_wins(store: AnyStore) -> None:
    etag = await store.put_order("#W7678072", ORDER)
    results = await asyncio.gather(
        store.put_order("#W7678072", {**ORDER, "status": "cancelled"}, etag=etag),
        store.put_order("#W7678072", {**ORDER, "status": "pending (item modified)"}, etag=etag),
        return_exceptions=True,
    )
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, ConcurrencyConflict) for r in results) == 1


async def test_customers_are_found_by_email_in_any_case(store: AnyStore) -> None:
    await store.put_customer("noah_brown_6181", CUSTOMER)
    assert await store.find_user_id_by_email("  Noah.Brown7922@EXAMPLE.com ") == "noah_brown_6181"
    assert await store.find_user_id_by_email("someone.else@example.com") is None


async def test_a_new_address_moves_the_name_and_zip_lookup(store: AnyStore) -> None:
    etag = await store.put_customer("noah_brown_6181", CUSTOMER)
    assert await store.find_user_id_by_name_zip("noah", "BROWN", "80279") == "noah_brown_6181"
    moved = copy.deepcopy(CUSTOMER)
    moved["address"]["zip"] = "10001"
    await store.put_customer("noah_brown_6181", moved, etag=etag)
    assert await store.find_user_id_by_name_zip("Noah", "Brown", "10001") == "noah_brown_6181"
    assert await store.find_user_id_by_name_zip("Noah", "Brown", "80279") is None


async def test_product_types_list_name_to_id_sorted_by_name(store: AnyStore) -> None:
    await store.put_product("2", product("2", "Water Bottle"))
    await store.put_product("1", product("1", "Action Camera"))
    assert await store.list_product_types() == {"Action Camera": "1", "Water Bottle": "2"}
    read = await store.get_product("2")
    assert read is not None and list(read.doc["variants"]) == ["9", "10", "1"]


async def test_records_list_in_import_order_then_new_ones(store: AnyStore) -> None:
    records = [Record(key=k, seq=i, doc={"order_id": k}) for i, k in enumerate(["#W3", "#W1", "#W2"])]
    await store.import_records(Collection.ORDERS, records)
    await store.put_order("#W0", {"order_id": "#W0"})
    await store.put_order("#W3", {"order_id": "#W3", "status": "changed"})  # keeps its place
    keys = [key async for key, _ in store.iter_records(Collection.ORDERS)]
    assert keys == ["#W3", "#W1", "#W2", "#W0"]


async def test_ping_answers_while_the_store_is_up(store: AnyStore) -> None:
    await store.ping()


async def test_state_documents_read_write_and_delete(store: AnyStore) -> None:
    key = "msteams/conversations/19:abc#thread?x/"
    assert await store.read_state(key) is None
    etag = await store.write_state(key, {"turns": 1, "nested": {"a": [1, 2]}})
    read = await store.read_state(key)
    assert read is not None and read.doc == {"turns": 1, "nested": {"a": [1, 2]}} and read.etag == etag
    await store.delete_state(key)
    assert await store.read_state(key) is None
    await store.delete_state(key)  # deleting twice is fine


async def test_state_write_with_a_stale_etag_raises_and_keeps_the_newer_state(store: AnyStore) -> None:
    first = await store.write_state("conv-1", {"turns": 1})
    await store.write_state("conv-1", {"turns": 2}, etag=first)
    with pytest.raises(ConcurrencyConflict, match="precondition is not met"):
        await store.write_state("conv-1", {"turns": 99}, etag=first)
    read = await store.read_state("conv-1")
    assert read is not None and read.doc == {"turns": 2}


async def test_state_conditional_write_to_an_empty_key_creates_it(store: AnyStore) -> None:
    await store.write_state("conv-2", {"turns": 1}, etag="from-a-cleared-conversation")
    read = await store.read_state("conv-2")
    assert read is not None and read.doc == {"turns": 1}


async def test_state_insert_creates_once_and_refuses_a_second_time(store: AnyStore) -> None:
    """Two instances creating one Direct Line slot at once: one wins, the other learns it."""
    results = await asyncio.gather(
        store.insert_state("dl/c/0000000", {"text": "a"}),
        store.insert_state("dl/c/0000000", {"text": "b"}),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ConcurrencyConflict", "str"]
    winner = "a" if isinstance(results[0], str) else "b"
    stored = await store.read_state("dl/c/0000000")
    assert stored is not None and stored.doc == {"text": winner} and stored.etag in results


async def test_long_state_keys_stay_distinct(store: AnyStore) -> None:
    base = "webchat/conversations/" + "x" * 300
    await store.write_state(base + "/a", {"which": "a"})
    await store.write_state(base + "/b", {"which": "b"})
    a, b = await store.read_state(base + "/a"), await store.read_state(base + "/b")
    assert a is not None and b is not None and (a.doc, b.doc) == ({"which": "a"}, {"which": "b"})


async def test_state_keys_list_by_prefix_with_escaped_and_long_keys(store: AnyStore) -> None:
    keys = [
        "dl/conv-a",
        "dl/conv-a/0000000",
        "dl/conv-a/0000001",
        "dl/conv-ab/0000000",
        "msteams/conversations/19:abc#thread?x/",
        "webchat/conversations/" + "x" * 300,
    ]
    for key in keys:
        await store.write_state(key, {"k": key})
    assert sorted([key async for key in store.iter_state_keys("dl/conv-a/")]) == keys[1:3]
    assert sorted([key async for key in store.iter_state_keys("msteams/")]) == [keys[4]]
    assert sorted([key async for key in store.iter_state_keys("")]) == sorted(keys)
    assert [key async for key in store.iter_state_keys("nothing/")] == []
    await store.delete_state(keys[1])
    assert [key async for key in store.iter_state_keys("dl/conv-a/")] == [keys[2]]


async def test_a_store_opened_without_a_retention_policy_keeps_everything(store: AnyStore) -> None:
    await store.write_state("directline/conversations/c1", {"turns": 1})
    assert await store.purge_expired() == 0
    assert await store.read_state("directline/conversations/c1") is not None


async def test_the_full_dataset_imports_idempotently_and_exports_unchanged(
    store: AnyStore, dataset_dir: Path, dataset: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    counts = await import_dataset(store, dataset_dir, progress=False)
    assert counts == {"users": 500, "orders": 1000, "products": 50}
    assert await import_dataset(store, dataset_dir, progress=False) == counts
    assert await export_dataset(store, tmp_path / "export") == counts
    for name, original in dataset.items():
        exported = json.loads((tmp_path / "export" / f"{name}.json").read_text("utf-8"))
        assert exported == original
        # Equal dicts can differ in key order; the serialized text cannot.
        assert json.dumps(exported) == json.dumps(original), f"{name}.json changed key or list order"
    assert await store.find_user_id_by_email("noah.brown7922@example.com") == "noah_brown_6181"
    assert len(await store.list_product_types()) == 50


async def test_an_unreachable_sqlite_store_raises_store_unavailable(tmp_path: Path) -> None:
    from shop.store.sqlite import SqliteStore

    opened = await SqliteStore.open(tmp_path / "x.sqlite3")
    await opened.aclose()
    with pytest.raises(StoreUnavailable):
        await opened.get_order("#W0000000")
