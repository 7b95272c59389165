"""Fixtures for the reliability suite: app processes on a copy of the seeded store,
stopped (or found already dead) at the end of each test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from tests.reliability.harness import AppProcess


class Apps:
    """Starts app processes for one test and stops whatever is left at its end."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._started: list[AppProcess] = []

    async def start(
        self, env: Mapping[str, str], *, port: int | None = None, name: str = "app"
    ) -> AppProcess:
        app = AppProcess(env, self._folder / f"{name}.log", port=port)
        self._started.append(app)
        await app.start()
        return app

    async def stop_all(self) -> None:
        for app in self._started:
            await app.stop()


@pytest.fixture
async def apps(tmp_path: Path) -> AsyncIterator[Apps]:
    started = Apps(tmp_path)
    try:
        yield started
    finally:
        await started.stop_all()


def app_env(**values: str) -> dict[str, str]:
    """The app's settings for these tests; everything that matters is explicit, so the
    developer's environment cannot change what is tested."""
    return {
        "STORE": "sqlite",
        "LLM_PROVIDER": "offline",
        "SEED_ON_START": "true",
        "DIRECT_LINE_SECRET": "",
        "MicrosoftAppId": "",
        "MicrosoftAppPassword": "",
        **values,
    }


@pytest.fixture
def sqlite_env(sqlite_template: Path, dataset_dir: Path, tmp_path: Path) -> dict[str, str]:
    """A SQLite store holding the full retail dataset (a copy of the session's template)."""
    path = tmp_path / "aftercare.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return app_env(SQLITE_PATH=str(path), DATASET_DIR=str(dataset_dir))
