"""Fixtures shared by every test: settings isolated from the environment, a live app, no network."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.service import create_app
from bot.settings import Settings
from dialogs import OfflineResources
from shop.dataset import SHIPPED_DATASET_DIR, import_dataset
from shop.store.sqlite import SqliteStore
from tests.support.scripted_openai import ScriptedOpenAI

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# The demo shop's data, shipped inside the package: the tests need nothing outside the repository.
DATASET_DIR = SHIPPED_DATASET_DIR


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails any attempt to reach beyond this machine (a real cloud endpoint, above all)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(address: Any) -> None:
        if isinstance(address, tuple) and address:
            host = address[0]
            try:
                if ipaddress.ip_address(host).is_loopback:
                    return
            except ValueError:
                if host == "localhost":
                    return
            raise ConnectionRefusedError(f"tests may only use loopback, not {host}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def make_settings(tmp_path: Path, sqlite_template: Path) -> Callable[..., Settings]:
    """Settings from explicit values only: no `.env`, no leaking environment. The embedded
    store is a fresh copy of the imported dataset."""

    def make(**overrides: Any) -> Settings:
        path = tmp_path / "aftercare.sqlite3"
        if "SQLITE_PATH" not in overrides and not path.exists():
            shutil.copyfile(sqlite_template, path)
        values: dict[str, Any] = {"SQLITE_PATH": path, "SEED_ON_START": False}
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def offline_resources() -> OfflineResources:
    """The embedded intent examples and policy documents, built once for the whole run."""
    from providers.embeddings.local import LocalEmbeddings

    return asyncio.run(OfflineResources.build(LocalEmbeddings()))


@pytest.fixture
async def server(settings: Settings, offline_resources: OfflineResources) -> AsyncIterator[TestServer]:
    test_server = TestServer(create_app(settings, offline_resources=offline_resources), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
def base_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def dataset_dir() -> Path:
    assert (DATASET_DIR / "orders.json").is_file(), f"the retail dataset is missing at {DATASET_DIR}"
    return DATASET_DIR


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> Path:
    """The full dataset imported once; copying the file is far quicker than importing."""
    path = tmp_path_factory.mktemp("template") / "retail.sqlite3"

    async def build() -> None:
        store = await SqliteStore.open(path)
        try:
            await import_dataset(store, dataset_dir, progress=False)
        finally:
            await store.aclose()  # closing checkpoints the WAL into the main file

    asyncio.run(build())
    return path


@pytest.fixture
async def retail_sqlite(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A fresh SQLite store holding the full dataset."""
    path = tmp_path / "retail.sqlite3"
    shutil.copyfile(sqlite_template, path)
    store = await SqliteStore.open(path)
    yield store
    await store.aclose()


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedOpenAI]:
    """The scripted OpenAI-compatible server on loopback (stands in for Azure OpenAI / OpenAI)."""
    server = ScriptedOpenAI()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def channel_inbox() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A channel's Bot Connector service on loopback: (its serviceUrl, the activities it got)."""
    received: list[dict[str, Any]] = []

    async def inbox(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"id": f"activity-{len(received)}"})

    app = web.Application()
    app.router.add_post("/v3/conversations/{cid}/activities", inbox)
    app.router.add_post("/v3/conversations/{cid}/activities/{aid}", inbox)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), received
    await server.close()
