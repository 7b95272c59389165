"""Turn throughput and latency through Direct Line: Aftercare side by side with a stock echo bot.

Each target runs as its own server process on loopback. N conversations run at once,
each doing M turns: post a message, wait for the bot's answer on the conversation's
WebSocket stream, post the next (a closed loop with no think time, so p50 is about
N / throughput). Printed per target: turns/s, p50/p95/p99 latency, server CPU ms per
turn; then the ratio of each target to the echo bot, all measured in this one run.

Each conversation is a real customer of the retail dataset with a support conversation
of its own: say hello and ask where an order is, verify by email, ask about their own
orders by id (each a point read of the order store), policy questions, thanks. So a turn
is the whole path (state read and write, the engine, a store read, the reply), and the
texts differ between customers as real ones do (names, emails, order ids); the echo bot
gets the same messages.

Targets: `echo` (the stock echo bot), `sqlite` (Aftercare on the embedded store), `cosmos`
(Aftercare on the local Cosmos DB protocol server, tests/support/cosmos.py, started for the
run on the same machine: it measures the client path, not Azure's latency), `traced`
(`sqlite` with every span exported over OTLP/HTTP to a sink on loopback, started for the
run: the cost of tracing; metrics are on in every Aftercare target).

Run: `.venv/bin/python -m bench.turns [--conversations 32] [--turns 10] [--targets echo,sqlite,cosmos]`
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from dialogs.intents import mask
from shop.dataset import SHIPPED_DATASET_DIR
from tests.support.cosmos import TEST_KEY, cosmos_server
from tests.support.directline import start_conversation

ROOT = Path(__file__).resolve().parents[1]
# The warm-up talks as other customers than the measured run, so it warms no cache for it.
WARM_UP_CUSTOMERS = 400
DATASET = SHIPPED_DATASET_DIR

# One customer's conversation; {first}, {email}, {order} and {other} are theirs.
_CONVERSATION = (
    "Hi, this is {first}. Where is my order?",
    "{email}",
    "{order}",
    "What is your return policy?",
    "Has {other} shipped yet?",
    "How long does shipping take?",
    "What did I buy in {order}?",
    "How long do refunds take?",
    "When will {other} arrive?",
    "Thanks {first}, that's all",
)


def customer_scripts(conversations: int, turns: int, first: int = 0) -> list[list[str]]:
    """A conversation of `turns` messages for each of `conversations` customers from the `first`."""
    users = json.loads((DATASET / "users.json").read_text(encoding="utf-8"))
    customers = [user for user in users.values() if user["orders"]]
    scripts = []
    for index in range(conversations):
        user = customers[(first + index) % len(customers)]
        fields = {
            "first": user["name"]["first_name"],
            "email": user["email"],
            "order": user["orders"][0],
            "other": user["orders"][-1],
        }
        scripts.append([_CONVERSATION[n % len(_CONVERSATION)].format(**fields) for n in range(turns)])
    return scripts


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    target: str
    turns: int
    seconds: float
    latencies_ms: list[float]
    cpu_ms: float
    client_cpu_ms: float
    store_server_cpu_ms: float | None
    errors: int

    @property
    def turns_per_s(self) -> float:
        return self.turns / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time of the server process and every process under it (the embedding model
    runs in a child process of the app), user + system."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0  # it ended between the listing and the read
    total = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        total += sum(cpu_seconds(int(child)) for child in task.read_text().split())
    return total


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, name: str) -> None:
    """Blocks until the server at `url` answers /healthz (2 minutes at most)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"{name} did not start: {output}") from None
            time.sleep(0.2)


@contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP collector stand-in that takes every export and drops it."""

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextmanager
def serve(target: str, workdir: Path) -> Iterator[tuple[str, int]]:
    if target == "traced":
        with otlp_sink() as collector:
            traced = {
                "STORE": "sqlite",
                "SQLITE_PATH": str(workdir / "traced.sqlite3"),
                "TRACE_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
            }
            with serve_process(target, workdir, traced) as served:
                yield served
    elif target == "cosmos":
        with cosmos_server() as endpoint:
            cosmos = {"STORE": "cosmos", "COSMOS_ENDPOINT": endpoint, "COSMOS_KEY": TEST_KEY}
            with serve_process(target, workdir, cosmos) as served:
                yield served
    else:
        with serve_process(target, workdir, {}) as served:
            yield served


@contextmanager
def serve_process(target: str, workdir: Path, store_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    if target == "echo":
        command = [sys.executable, "-m", "bench.echo_bot", "--port", str(port)]
    else:
        env.update(store_env or {"STORE": "sqlite", "SQLITE_PATH": str(workdir / f"{target}.sqlite3")})
        command = [sys.executable, "app.py"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url, target)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(15)


async def one_conversation(
    session: aiohttp.ClientSession, url: str, script: list[str], latencies: list[float]
) -> int:
    conv = await start_conversation(session, url)
    errors = 0
    async with session.ws_connect(conv.stream_url) as ws:
        pending: dict[str, asyncio.Future[float]] = {}

        async def read() -> None:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT or not message.data:
                    continue
                for activity in json.loads(message.data)["activities"]:
                    waiter = pending.get(activity.get("replyToId") or "")
                    if waiter and not waiter.done() and activity.get("type") == "message":
                        waiter.set_result(time.perf_counter())

        reader = asyncio.create_task(read())
        try:
            for text in script:
                started = time.perf_counter()
                server_id, _ = await conv.send(text)
                waiter = pending.setdefault(server_id, asyncio.get_running_loop().create_future())
                try:
                    answered = await asyncio.wait_for(waiter, 30)
                    latencies.append((answered - started) * 1000)
                except TimeoutError:
                    errors += 1
        finally:
            reader.cancel()
    return errors


async def load(url: str, conversations: int, turns: int, first: int = 0) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        errors = await asyncio.gather(
            *(
                one_conversation(session, url, script, latencies)
                for script in customer_scripts(conversations, turns, first)
            )
        )
        return time.perf_counter() - started, latencies, sum(errors)


def run_target(target: str, conversations: int, turns: int, workdir: Path) -> Result:
    with serve(target, workdir) as (url, pid):
        asyncio.run(load(url, 4, 3, WARM_UP_CUSTOMERS))  # warm-up: imports, connections
        store_pid = _store_server_pid()
        store_before = cpu_seconds(store_pid) if store_pid else 0.0
        cpu_before, client_before = cpu_seconds(pid), time.process_time()
        seconds, latencies, errors = asyncio.run(load(url, conversations, turns))
        cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000
        client_ms = (time.process_time() - client_before) * 1000
        store_ms = (cpu_seconds(store_pid) - store_before) * 1000 if store_pid else None
    n = max(1, len(latencies))
    store_per_turn = None if store_ms is None else store_ms / n
    return Result(
        target, len(latencies), seconds, latencies, cpu_ms / n, client_ms / n, store_per_turn, errors
    )


def _store_server_pid() -> int | None:
    """The local Cosmos DB server this run started (a child of this process), if any:
    it shares the machine's cores, so its CPU is part of what a turn costs here."""
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            if b"cosmos_server.js" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=32)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--targets", default="echo,sqlite")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets.split(","):
            results.append(run_target(target, args.conversations, args.turns, Path(tmp)))
    messages = [text for script in customer_scripts(args.conversations, args.turns) for text in script]
    print(
        f"{args.conversations} concurrent conversations x {args.turns} turns, {os.cpu_count()} cores; "
        f"{len(set(messages))} distinct messages, {len({mask(t) for t in messages})} after masking ids"
    )
    print(
        f"{'target':<10}{'turns/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'CPU ms/turn':>13}"
        f"{'client CPU':>12}{'store CPU':>11}{'errors':>8}"
    )
    for r in results:
        print(
            f"{r.target:<10}{r.turns_per_s:>9.1f}{r.percentile(0.5):>9.1f}{r.percentile(0.95):>9.1f}"
            f"{r.percentile(0.99):>9.1f}{r.cpu_ms:>13.2f}{r.client_cpu_ms:>12.2f}"
            f"{'-' if r.store_server_cpu_ms is None else f'{r.store_server_cpu_ms:.2f}':>11}{r.errors:>8}"
        )
    echo = next((r for r in results if r.target == "echo"), None)
    if echo:
        for r in results:
            if r is not echo:
                print(
                    f"{r.target}/echo: throughput x{r.turns_per_s / echo.turns_per_s:.2f}, "
                    f"p99 x{r.percentile(0.99) / echo.percentile(0.99):.2f}, "
                    f"median latency {statistics.median(r.latencies_ms):.1f} "
                    f"vs {statistics.median(echo.latencies_ms):.1f} ms"
                )


if __name__ == "__main__":
    main()
