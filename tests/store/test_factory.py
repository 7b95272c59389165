"""Choosing and opening stores from settings, seeding, and how store failures surface:
a down or throttled Cosmos DB is `StoreUnavailable`, a missing SDK names the extra."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.cosmos import exceptions

from bot.settings import Settings
from shop.errors import ConcurrencyConflict, ConfigurationError, StoreUnavailable
from shop.store.cosmos import CosmosStore, _translated, item_id
from shop.store.factory import _cosmos_store_class, open_stores, seed_if_empty
from shop.store.sqlite import SqliteStore
from tests.support.cosmos import TEST_KEY, cosmos_server


async def test_sqlite_is_the_default_and_seeds_once(
    make_settings: Callable[..., Settings], dataset_dir: Path, tmp_path: Path
) -> None:
    stores = await open_stores(make_settings(SQLITE_PATH=tmp_path / "empty.sqlite3"))
    try:
        assert isinstance(stores.orders, SqliteStore) and stores.state is stores.orders
        assert await seed_if_empty(stores.orders, dataset_dir) == 1550
        assert await seed_if_empty(stores.orders, dataset_dir) == 0
        assert (await stores.orders.get_order("#W2611340")) is not None
    finally:
        await stores.aclose()


async def test_cosmos_is_chosen_by_settings(
    make_settings: Callable[..., Settings], cosmos_endpoint: str
) -> None:
    settings = make_settings(
        STORE="cosmos", COSMOS_ENDPOINT=cosmos_endpoint, COSMOS_KEY=TEST_KEY, COSMOS_DATABASE="factory"
    )
    stores = await open_stores(settings, cosmos_verify_tls=False)
    try:
        assert isinstance(stores.orders, CosmosStore)
        await stores.state.ping()
    finally:
        await stores.aclose()


def test_a_missing_cosmos_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "shop.store.cosmos")
    monkeypatch.setitem(sys.modules, "azure.cosmos", None)
    with pytest.raises(ConfigurationError, match=r"aftercare\[cosmos\]"):
        _cosmos_store_class()


async def test_a_cosmos_server_that_goes_away_raises_store_unavailable() -> None:
    with cosmos_server() as endpoint:
        store = await CosmosStore.open(endpoint, TEST_KEY, "gone", verify_tls=False)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.get_order("#W2611340")
        assert time.monotonic() - started < 60
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, StoreUnavailable),
        (503, StoreUnavailable),
        (412, ConcurrencyConflict),
    ],
)
def test_cosmos_http_errors_map_to_app_errors(status: int, expected: type[Exception]) -> None:
    error_type = (
        exceptions.CosmosAccessConditionFailedError if status == 412 else exceptions.CosmosHttpResponseError
    )
    with pytest.raises(expected), _translated("a test"):
        raise error_type(status_code=status, message="from the service")


def test_every_key_becomes_a_distinct_valid_cosmos_id() -> None:
    keys = [
        "#W2611340",
        "W2611340",
        "a/b",
        "a~2Fb",
        "emulator/conversations/x?y#z/",
        "é",
        "x" * 400,
        "x" * 401,
    ]
    ids = [item_id(key) for key in keys]
    assert len(set(ids)) == len(ids)
    assert all(len(i) <= 255 and not set(i) & set("/\\?#") for i in ids)
    assert item_id("#W2611340") == "~23W2611340"
