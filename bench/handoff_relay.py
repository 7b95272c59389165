"""Relay latency between customers and agents while agents hold many conversations.

The app runs as `python app.py` on SQLite in its own process; this process plays 50
customers in Web Chat's shape (Direct Line, replies read from the WebSocket stream, as
Web Chat does) and 5 agents in the console's shape (signed in, a server-sent event
stream each, re-reading a conversation when an event names it, as the console page
does). Every conversation asks for a person and is claimed, so 50 are held at once.
Then, in every conversation at the same time, rounds of:

- customer -> agent: the customer posts a message; timed until the agent's console has
  it (the event arrives and the re-read record contains the text);
- agent -> customer: the agent posts a reply; timed until the customer's stream has it.

Run: `.venv/bin/python -m bench.handoff_relay [--conversations 50] [--agents 5] [--rounds 5]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

from bench.turns import ROOT, cpu_seconds, free_port, wait_until_healthy
from tests.support.directline import DirectLineConversation, start_conversation

PASSWORD = "bench-password-123"


class AgentConsole:
    """One agent: a cookie session, its CSRF token, and its event stream."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.waiters: dict[str, list[tuple[str, asyncio.Future[float]]]] = defaultdict(list)
        self._reader: asyncio.Task[None] | None = None
        self._rereads: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        async with self.session.post(
            f"{self.url}/agent/api/sign-in", json={"name": self.name, "password": PASSWORD}
        ) as resp:
            assert resp.status == 200, await resp.text()
            self.csrf = (await resp.json())["csrf"]
        self._reader = asyncio.create_task(self._read_events())

    async def post(self, path: str, body: dict[str, Any] | None = None) -> None:
        async with self.session.post(
            f"{self.url}/agent/api{path}", json=body or {}, headers={"X-CSRF-Token": self.csrf}
        ) as resp:
            assert resp.status == 200, await resp.text()

    def expect(self, conversation_id: str, text: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[conversation_id].append((text, future))
        return future

    async def _read_events(self) -> None:
        async with self.session.get(f"{self.url}/agent/api/events", timeout=aiohttp.ClientTimeout()) as resp:
            event = ""
            async for raw in resp.content:
                line = raw.decode().strip()
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "message":
                    conversation_id = json.loads(line.removeprefix("data: ")).get("conversation_id")
                    if self.waiters.get(conversation_id):
                        task = asyncio.create_task(self._reread(conversation_id))
                        self._rereads.add(task)
                        task.add_done_callback(self._rereads.discard)

    async def _reread(self, conversation_id: str) -> None:
        async with self.session.get(f"{self.url}/agent/api/conversations/{conversation_id}") as resp:
            record = await resp.json()
        now = time.perf_counter()
        texts = {entry["text"] for entry in record.get("log", [])}
        pending = self.waiters[conversation_id]
        for text, future in list(pending):
            if text in texts and not future.done():
                future.set_result(now)
                pending.remove((text, future))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.session.close()


class CustomerStream:
    """A customer's Web Chat: the conversation and its WebSocket stream of activities."""

    def __init__(self, conversation: DirectLineConversation) -> None:
        self.conversation = conversation
        self.waiters: list[tuple[str, asyncio.Future[float]]] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ws = await self.conversation.session.ws_connect(self.conversation.stream_url)
        self._reader = asyncio.create_task(self._read(ws))

    def expect(self, text: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters.append((text, future))
        return future

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT or not message.data:
                continue
            now = time.perf_counter()
            for activity in json.loads(message.data).get("activities", []):
                for text, future in list(self.waiters):
                    if activity.get("text") == text and not future.done():
                        future.set_result(now)
                        self.waiters.remove((text, future))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()


async def hold(
    url: str, conversations: int, agents: list[AgentConsole]
) -> list[tuple[CustomerStream, AgentConsole]]:
    """Every customer asks for a person and one agent (round robin) claims them."""
    http = aiohttp.ClientSession()
    pairs = []
    for index in range(conversations):
        conversation = await start_conversation(http, url)
        customer = CustomerStream(conversation)
        await customer.start()
        await conversation.send("I want to talk to a person")
        agent = agents[index % len(agents)]
        for _ in range(100):  # the handoff is queued once the turn ran
            async with agent.session.get(f"{url}/agent/api/queue") as resp:
                queue = (await resp.json())["queue"]
            if any(e["conversation_id"] == conversation.conversation_id for e in queue):
                break
            await asyncio.sleep(0.05)
        await agent.post(f"/conversations/{conversation.conversation_id}/claim")
        pairs.append((customer, agent))
    return pairs


async def relay_rounds(
    pairs: list[tuple[CustomerStream, AgentConsole]], rounds: int
) -> tuple[list[float], list[float]]:
    to_agent: list[float] = []
    to_customer: list[float] = []

    async def one(index: int, customer: CustomerStream, agent: AgentConsole) -> None:
        conversation_id = customer.conversation.conversation_id
        for round_ in range(rounds):
            text = f"customer {index} round {round_}: is there any news?"
            arrived = agent.expect(conversation_id, text)
            started = time.perf_counter()
            await customer.conversation.send(text)
            to_agent.append((await asyncio.wait_for(arrived, 30) - started) * 1000)
            reply = f"agent reply {index}.{round_}: checking with the carrier now"
            seen = customer.expect(reply)
            started = time.perf_counter()
            await agent.post(f"/conversations/{conversation_id}/messages", {"text": reply})
            to_customer.append((await asyncio.wait_for(seen, 30) - started) * 1000)

    await asyncio.gather(*(one(i, customer, agent) for i, (customer, agent) in enumerate(pairs)))
    return to_agent, to_customer


def add_agents(workdir: Path, names: list[str], env: dict[str, str]) -> None:
    for name in names:
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "agents", "add", name, "--password-stdin"],
            input=PASSWORD + "\n",
            text=True,
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )


async def measure(
    url: str, conversations: int, agent_count: int, rounds: int
) -> tuple[list[float], list[float]]:
    agents = [AgentConsole(url, f"agent{i}") for i in range(agent_count)]
    for agent in agents:
        await agent.start()
    pairs = await hold(url, conversations, agents)
    try:
        return await relay_rounds(pairs, rounds)
    finally:
        for customer, _ in pairs:
            await customer.close()
        if pairs:
            await pairs[0][0].conversation.session.close()
        for agent in agents:
            await agent.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aftercare-relay-") as folder:
        workdir = Path(folder)
        port = free_port()
        env = {
            **os.environ,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "SQLITE_PATH": str(workdir / "relay.sqlite3"),
        }
        add_agents(workdir, [f"agent{i}" for i in range(args.agents)], env)
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(process, url, "aftercare")
            cpu_before = cpu_seconds(process.pid)
            started = time.perf_counter()
            to_agent, to_customer = asyncio.run(measure(url, args.conversations, args.agents, args.rounds))
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(process.pid) - cpu_before
        finally:
            process.terminate()
            process.wait(15)
    messages = len(to_agent) + len(to_customer)
    print(
        f"{args.conversations} conversations held by {args.agents} agents at once, "
        f"{args.rounds} rounds each, {os.cpu_count()} cores; {messages} relayed messages "
        f"in {elapsed:.1f} s (set-up included), "
        f"server CPU {cpu / max(messages, 1) * 1000:.2f} ms per relayed message"
    )
    print(f"{'direction':<28} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, values in (("customer -> agent console", to_agent), ("agent -> customer stream", to_customer)):
        print(
            f"{name:<28} {len(values):>5} {percentile(values, 0.5):>8.1f} {percentile(values, 0.95):>8.1f} "
            f"{percentile(values, 0.99):>8.1f} {statistics.fmean(values):>8.1f}"
        )


if __name__ == "__main__":
    main()
