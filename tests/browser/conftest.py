"""A live app in its own process (as `make run` starts it) and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_app_store(tmp_path: Path) -> Path:
    """The live app's embedded store; it seeds it from the dataset on first start, as `make run` does."""
    return tmp_path / "aftercare.sqlite3"


@pytest.fixture
def live_app_env(live_app_store: Path) -> dict[str, str]:
    """The live app's environment (less its port): also for CLI commands run against its store."""
    return {
        **os.environ,
        "SQLITE_PATH": str(live_app_store),
        "LOG_LEVEL": "WARNING",
        "LLM_PROVIDER": "offline",
    }


@pytest.fixture
def live_app(live_app_store: Path, live_app_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    tmp_path = live_app_store.parent
    env = {**live_app_env, "HOST": "127.0.0.1", "PORT": str(port)}
    log_path = tmp_path / "app.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"the app exited at start-up:\n{log_path.read_text()}")
                try:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"the app did not start within 60 s:\n{log_path.read_text()}")
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)"
        )
    return CHROMIUM


@pytest.fixture
async def browser(tmp_path: Path, chromium: Path) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        # A persistent context is how Playwright takes a fresh profile directory.
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 900, "height": 800},
        )
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
async def chromium_browser(chromium: Path) -> AsyncIterator[Browser]:
    """One chromium for tests that need isolated contexts side by side (a customer and an agent)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()
