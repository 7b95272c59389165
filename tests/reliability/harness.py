"""The app as a real process, and customers talking to it through Direct Line, for the
reliability tests: start, kill -9, restart on the same store and port; watch replies on
each conversation's WebSocket; read the transcript and the dialog state back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from shop.store.base import StateStore
from tests.support.directline import DirectLineConversation, start_conversation

ROOT = Path(__file__).resolve().parents[2]
Activity = dict[str, Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppProcess:
    """`python app.py` with the given environment, on a fixed loopback port.

    Its log goes to `log_path` (appended across restarts), so a test can check that a
    run logged no errors. `kill()` is SIGKILL: nothing is flushed, closed or finished.
    """

    def __init__(self, env: Mapping[str, str], log_path: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self._env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def child_pids(self) -> list[int]:
        """The processes the app started (its embedding model's, multiprocessing's tracker)."""
        return [
            int(pid)
            for children in Path(f"/proc/{self.pid}/task").glob("*/children")
            for pid in children.read_text().split()
        ]

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, within_s: float = 90.0) -> None:
        """Starts the app and returns once it serves HTTP (its stores are open by then)."""
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "app.py",
                cwd=ROOT,
                env=self._env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        async with aiohttp.ClientSession() as session:
            deadline = asyncio.get_running_loop().time() + within_s
            while True:
                # A child process offers no event to await; its port answering is the signal.
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                if self._process.returncode is not None:
                    raise AssertionError(f"the app exited with {self._process.returncode}: {self.log()}")
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"the app did not serve within {within_s} s: {self.log()}")
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost VM would."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        await self._process.wait()

    async def stop(self) -> None:
        if not self.running:
            return
        assert self._process is not None
        self._process.terminate()
        try:
            await asyncio.wait_for(self._process.wait(), 15)
        except TimeoutError:
            await self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def error_lines(self) -> list[str]:
        """Log lines at ERROR or above, and tracebacks."""
        return [
            line
            for line in self.log().splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        ]


class StreamWatcher:
    """Everything the bot sends on one conversation, as Web Chat sees it on the WebSocket."""

    def __init__(self, conversation: DirectLineConversation) -> None:
        self.conversation = conversation
        self.activities: dict[str, Activity] = {}
        self.frames_with_repeats = 0
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> StreamWatcher:
        self._socket = await self.conversation.session.ws_connect(self.conversation.stream_url)
        self._task = asyncio.create_task(self._read(self._socket))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT or not message.data:
                continue
            for activity in json.loads(message.data)["activities"]:
                if activity["id"] in self.activities:
                    self.frames_with_repeats += 1
                self.activities[activity["id"]] = activity
            self._arrived.set()

    async def wait_until(self, done: Callable[[], bool], within_s: float) -> None:
        """Waits, on arrivals rather than a timer, until `done()` holds."""
        async with asyncio.timeout(within_s):
            while not done():
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_for_turns(self, activity_ids: list[str], within_s: float = 60.0) -> None:
        """Until the bot has finished answering each of these customer messages."""
        await self.wait_until(
            lambda: all(turn_finished(list(self.activities.values()), i) for i in activity_ids), within_s
        )


def is_bot_message(activity: Activity) -> bool:
    return activity.get("type") == "message" and activity.get("from", {}).get("role") == "bot"


async def transcript(conversation: DirectLineConversation) -> list[Activity]:
    """The whole conversation as the channel has stored it (GET activities from the start)."""
    url, headers = conversation.url("/activities"), conversation.headers
    async with conversation.session.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["activities"])


def turn_finished(activities: list[Activity], activity_id: str) -> bool:
    """The bot's last reply of a turn expects input; earlier ones of the same turn do not."""
    return any(
        is_bot_message(a) and a.get("replyToId") == activity_id and a.get("inputHint") == "expectingInput"
        for a in activities
    )


def answers(activities: list[Activity], sent: list[str]) -> list[list[str]]:
    """The texts of the bot's replies to each customer message in `sent`, in transcript order."""
    by_message: dict[str, list[str]] = {activity_id: [] for activity_id in sent}
    for activity in activities:
        if is_bot_message(activity) and activity.get("replyToId") in by_message:
            by_message[activity["replyToId"]].append(str(activity.get("text", "")))
    return [by_message[activity_id] for activity_id in sent]


def order_problems(activities: list[Activity], sent: list[str]) -> list[str]:
    """Where the transcript does not read message 1, its replies, message 2, its replies ...:
    a message missing, or a reply before its message or after a later message's reply."""
    position = {a["id"]: n for n, a in enumerate(activities)}
    problems = [f"{i} is not in the transcript" for i in sent if i not in position]
    last_reply = -1
    for activity_id in sent:
        replies = [
            position[a["id"]] for a in activities if is_bot_message(a) and a.get("replyToId") == activity_id
        ]
        if replies and (min(replies) < position.get(activity_id, -1) or min(replies) < last_reply):
            problems.append(f"the replies to {activity_id} are out of order")
        last_reply = max(replies, default=last_reply)
    return problems


def conversation_state_key(conversation_id: str) -> str:
    """Where the Bot Framework ConversationState of a Direct Line conversation is stored."""
    return f"directline/conversations/{conversation_id}"


async def dialog_turns(store: StateStore, conversation_ids: list[str]) -> dict[str, int | None]:
    """DialogState.turn per conversation, as stored (None when nothing is stored)."""
    turns: dict[str, int | None] = {}
    for conversation_id in conversation_ids:
        stored = await store.read_state(conversation_state_key(conversation_id))
        turns[conversation_id] = None if stored is None else int(stored.doc["dialog"]["turn"])
    return turns


async def remembered_messages(store: StateStore, conversation_id: str) -> list[str]:
    """The customer messages the stored dialog state has in its transcript."""
    stored = await store.read_state(conversation_state_key(conversation_id))
    transcript = [] if stored is None else stored.doc["dialog"]["transcript"]
    return [str(entry["text"]) for entry in transcript if entry["role"] == "user"]


@contextlib.asynccontextmanager
async def client_session() -> AsyncIterator[aiohttp.ClientSession]:
    # No connection limit: hundreds of customers each hold a WebSocket and post at once.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


@dataclass
class Talk:
    """One customer's side of a conversation: what was sent (server ids, in order)."""

    conversation: DirectLineConversation
    sent: list[str]
    repeated_on_stream: int  # activities the WebSocket delivered more than once


async def talk(
    session: aiohttp.ClientSession, base_url: str, script: list[str], *, burst: bool, within_s: float
) -> Talk:
    """A customer sends `script`: one message at a time, each after the bot has finished
    answering the previous one, or (`burst`) all at once, as fast as the channel
    acknowledges them; returns when every message has been answered."""
    conversation = await start_conversation(session, base_url)
    sent: list[str] = []
    async with StreamWatcher(conversation) as watcher:
        for text in script:
            sent.append((await conversation.send(text))[0])
            if not burst:
                await watcher.wait_for_turns(sent[-1:], within_s)
        await watcher.wait_for_turns(sent, within_s)
    return Talk(conversation, sent, watcher.frames_with_repeats)
