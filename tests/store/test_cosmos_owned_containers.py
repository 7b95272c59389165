"""COSMOS_CREATE_CONTAINERS=false: the deployment owns the database and its containers
(deployment/infra creates them) and the app's data-plane role may not create any, so the
store only reads them, and a missing one stops start-up with a sentence naming it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from azure.cosmos.aio import CosmosClient, DatabaseProxy

from bot.settings import Settings
from shop.errors import ConfigurationError
from shop.store.cosmos import CosmosStore
from shop.store.factory import open_stores
from tests.support.cosmos import TEST_KEY


def refuse_control_plane(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a data-plane role gets in Azure for creating a database or a container."""

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a control-plane call (create) under COSMOS_CREATE_CONTAINERS=false")

    for owner, method in (
        (CosmosClient, "create_database"),
        (CosmosClient, "create_database_if_not_exists"),
        (DatabaseProxy, "create_container"),
        (DatabaseProxy, "create_container_if_not_exists"),
    ):
        monkeypatch.setattr(owner, method, refused)


async def test_owned_containers_are_used_and_never_created(
    make_settings: Callable[..., Settings], cosmos_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"owned-{uuid.uuid4().hex[:8]}"
    provisioned = await CosmosStore.open(cosmos_endpoint, TEST_KEY, database, verify_tls=False)
    await provisioned.aclose()

    refuse_control_plane(monkeypatch)
    settings = make_settings(
        STORE="cosmos",
        COSMOS_ENDPOINT=cosmos_endpoint,
        COSMOS_KEY=TEST_KEY,
        COSMOS_DATABASE=database,
        COSMOS_CREATE_CONTAINERS="false",
    )
    assert settings.cosmos_create_containers is False
    stores = await open_stores(settings, cosmos_verify_tls=False)
    try:
        etag = await stores.state.write_state("probe", {"turns": 1})
        read = await stores.state.read_state("probe")
        assert read is not None and read.doc == {"turns": 1} and read.etag == etag
    finally:
        await stores.aclose()


async def test_a_missing_owned_container_stops_start_up_naming_it(
    cosmos_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_control_plane(monkeypatch)
    with pytest.raises(ConfigurationError, match=r"COSMOS_CREATE_CONTAINERS=false.*nothing-here/users"):
        await CosmosStore.open(
            cosmos_endpoint, TEST_KEY, "nothing-here", verify_tls=False, create_containers=False
        )


def test_the_app_creates_its_containers_unless_told_otherwise(make_settings: Callable[..., Settings]) -> None:
    assert make_settings().cosmos_create_containers is True
