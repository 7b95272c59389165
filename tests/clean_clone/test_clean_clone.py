"""The product as a new user meets it: a fresh clone of the repository alone, in an empty
folder with no sibling checkouts (no `../shared`), runs `make install`, starts the app with
`.venv/bin/python app.py` on a clean environment, and verifies a customer of the shipped
demo shop over the local Direct Line 3.0 channel.

It needs the package registries (pip and npm run in subprocesses, outside the loopback-only
guard of this process) and takes about three minutes; `make test` runs it, and
`pytest -m clean_clone` runs it alone."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.directline import answers, bot_replies, start_conversation

ROOT = Path(__file__).resolve().parents[2]
# Within the test's 900 s: the clone, the install, the start-up and the conversation.
INSTALL_TIMEOUT_S = 560
READY_WITHIN_S = 180
REPLY_WITHIN_S = 60

pytestmark = pytest.mark.clean_clone


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path} was not written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clone_alone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clones the committed HEAD into a fresh folder that holds nothing else."""
    parent = tmp_path_factory.mktemp("clean-clone")
    assert list(parent.iterdir()) == [], f"{parent} is not empty"
    clone = parent / "aftercare"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert [p.name for p in parent.iterdir()] == ["aftercare"], list(parent.iterdir())
    assert not (parent / "shared").exists()
    return clone


def make_install(clone: Path) -> None:
    """`make install` as the user runs it: their environment (PYTHON, pip's and npm's caches and
    configuration), minus anything tying it to this checkout's virtualenv or a parent make."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHONHOME", "PYTHONPATH"}
    }
    log = clone / "make-install.log"
    with log.open("wb") as out:
        try:
            result = subprocess.run(
                ["make", "install"],
                cwd=clone,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=INSTALL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"make install ran over {INSTALL_TIMEOUT_S}s; its log ends:\n{tail(log)}")
    assert result.returncode == 0, f"make install failed ({result.returncode}); its log ends:\n{tail(log)}"
    assert (clone / ".venv" / "bin" / "python").is_file(), tail(log)
    assert (clone / "node_modules" / ".installed").is_file(), tail(log)


def first_customer(clone: Path) -> dict[str, Any]:
    users = json.loads((clone / "shop" / "data" / "retail" / "users.json").read_text())
    assert users, "the shipped users.json holds no customers"
    user: dict[str, Any] = next(iter(users.values()))
    assert user["email"] and user["name"]["first_name"], user
    return user


def app_env(port: int) -> dict[str, str]:
    """A clean environment: nothing of this machine's Aftercare settings (DATASET_DIR,
    SQLITE_PATH, model endpoints ...) leaks into the app."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PORT": str(port),
        "HOST": "127.0.0.1",
    }


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield clone_alone(tmp_path_factory)


async def wait_ready(session: aiohttp.ClientSession, base_url: str, process: subprocess.Popen[bytes]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_WITHIN_S
    last = "no answer yet"
    while loop.time() < deadline:
        assert process.poll() is None, f"the app exited with {process.returncode} before it was ready"
        try:
            async with session.get(f"{base_url}/readyz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status == 200:
                    return
                last = f"{resp.status} {await resp.text()}"
        except (aiohttp.ClientError, TimeoutError) as error:
            last = repr(error)
        await asyncio.sleep(0.5)
    raise AssertionError(f"/readyz did not answer 200 within {READY_WITHIN_S}s; last: {last}")


def says(activity: dict[str, Any]) -> str:
    return f"{activity.get('text') or ''}\n{activity.get('speak') or ''}"


async def verify_customer(base_url: str, customer: dict[str, Any]) -> list[dict[str, Any]]:
    """Asks where the order is, gives the email, and returns the bot's replies to the email once
    one names the customer or one of their orders."""
    first_name = customer["name"]["first_name"]
    orders = list(customer["orders"])

    def names_customer(activity: dict[str, Any]) -> bool:
        text = says(activity)
        return first_name in text or any(order in text for order in orders)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        conversation = await start_conversation(session, base_url)
        asked, _ = await conversation.send("where is my order?")
        await conversation.poll_until(answers(asked), within_s=REPLY_WITHIN_S)
        told, _ = await conversation.send(customer["email"])
        received = await conversation.poll_until(
            lambda a: answers(told)(a) and names_customer(a), within_s=REPLY_WITHIN_S
        )
    return [a for a in bot_replies(received) if a.get("replyToId") == told]


async def talk_to(
    base_url: str, process: subprocess.Popen[bytes], customer: dict[str, Any]
) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, base_url, process)
    return await verify_customer(base_url, customer)


@pytest.mark.timeout(900)
def test_a_fresh_clone_alone_installs_starts_and_verifies_a_shipped_customer(clone: Path) -> None:
    make_install(clone)
    customer = first_customer(clone)
    port = free_loopback_port()
    base_url = f"http://127.0.0.1:{port}"
    server_log = clone / "app.log"

    with server_log.open("wb") as out:
        process = subprocess.Popen(
            [str(clone / ".venv" / "bin" / "python"), "app.py"],
            cwd=clone,
            env=app_env(port),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            try:
                replies = asyncio.run(talk_to(base_url, process, customer))
            except AssertionError as error:
                raise AssertionError(f"{error}\nthe app's log ends:\n{tail(server_log)}") from error
        finally:
            stop(process)

    first_name = customer["name"]["first_name"]
    assert any(
        first_name in says(r) or any(order in says(r) for order in customer["orders"]) for r in replies
    ), f"no reply names {first_name} or {customer['orders']}: {[says(r) for r in replies]}"
    log_text = server_log.read_text(errors="replace")
    assert "Traceback" not in log_text, f"the app logged a traceback:\n{tail(server_log, 120)}"
    # Passed: drop the 2 GB of installed packages; the logs stay for a look.
    for installed in (".venv", "node_modules"):
        shutil.rmtree(clone / installed, ignore_errors=True)
