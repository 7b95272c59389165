"""The Direct Line conversation log: every activity of a conversation, in order, with watermarks.

Both directions go through `ConversationRegistry.append`: the customer's activity when it
is posted, and the bot's replies when they reach the channel. The log is kept in the
state store (SQLite or Cosmos DB), written before an activity is acknowledged, so a
restarted app, or another instance on the same store, carries on the same conversations
from the same watermarks. Each process keeps a cache of the conversations it serves and
pushes new activities to its WebSocket subscribers.

Store layout: `dl/{id}` is the conversation's head (its user id), written once when it
starts, and `dl/{id}/{index}` each activity. An append is one write: it creates the slot
after the last activity this process knows. If a sibling instance created that slot
first, the create fails, this process reads what it missed and takes the next one. So a
slot is only ever created by an instance that has seen every slot before it: the log has
no gaps, and readers find its end at the first missing slot.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shop.errors import ConcurrencyConflict
from shop.store.base import StateStore

Activity = dict[str, Any]

# A subscriber that falls this far behind is dropped; its client reconnects from its
# watermark and loses nothing (the log still has every activity).
SUBSCRIBER_QUEUE_LIMIT = 1000
# The index a live-only activity (a typing indicator) is queued with: it is not in the log.
LIVE_ONLY = -2
_APPEND_ATTEMPTS = 20


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _role(activity: Activity) -> str | None:
    sender = activity.get("from")
    return sender.get("role") if isinstance(sender, dict) else None


def _head_key(conversation_id: str) -> str:
    return f"dl/{conversation_id}"


def _activity_key(conversation_id: str, index: int) -> str:
    return f"dl/{conversation_id}/{index:07d}"


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[tuple[int, Activity] | None] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE_LIMIT)
    )
    overflowed: bool = False


@dataclass(eq=False)
class Conversation:
    id: str
    user_id: str
    activities: list[Activity] = field(default_factory=list)
    subscriptions: set[Subscription] = field(default_factory=set)
    # Turns of one conversation run one at a time here, in arrival order (asyncio locks are FIFO).
    turn_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_active: float = field(default_factory=time.monotonic)
    # The customer activity whose turn is running; the bot's replies during it answer it.
    # (BotBuilder leaves replyToId empty on Direct Line, so the channel fills it in.)
    answering: str | None = None
    # Appends and refreshes of this process take turns, so each activity is added to
    # `activities` (and published) once.
    log_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Customer activities whose turn this process has scheduled and not finished, and
    # those it has already answered again after their first turn was lost.
    queued: set[str] = field(default_factory=set)
    replayed: set[str] = field(default_factory=set)

    @property
    def watermark(self) -> int:
        """Index of the newest activity, -1 when there is none."""
        return len(self.activities) - 1

    def since(self, watermark: int | None) -> tuple[list[Activity], int]:
        """Activities after `watermark` (all of them for None), and the new watermark."""
        start = 0 if watermark is None else watermark + 1
        return self.activities[start:], self.watermark

    def unanswered(self) -> list[Activity]:
        """The customer's latest messages that no reply answers (oldest first): those
        after the last message the bot answered."""
        # A reply is logged after the message it answers, so one pass from the end sees
        # every reply to a message before the message itself, and stops at the first
        # answered one.
        answered: set[str] = set()
        trailing: list[Activity] = []
        for activity in reversed(self.activities):
            role = _role(activity)
            if role == "bot" and activity.get("replyToId"):
                answered.add(str(activity["replyToId"]))
            elif role == "user" and activity.get("type") == "message":
                if activity.get("id") in answered:
                    break
                trailing.append(activity)
        return trailing[::-1]

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)

    def publish_live(self, activity: Activity) -> None:
        """Pushes an activity to the open streams without logging it (see `LIVE_ONLY`)."""
        self.publish(LIVE_ONLY, activity)

    def publish(self, index: int, activity: Activity) -> None:
        self.last_active = time.monotonic()
        for subscription in list(self.subscriptions):
            try:
                subscription.queue.put_nowait((index, activity))
            except asyncio.QueueFull:
                subscription.overflowed = True
                self.subscriptions.discard(subscription)


class ConversationRegistry:
    """The Direct Line conversations this process serves, backed by the state store."""

    def __init__(self, store: StateStore, idle_limit_s: float) -> None:
        self._store = store
        self._cached: dict[str, Conversation] = {}
        self._idle_limit_s = idle_limit_s

    def __len__(self) -> int:
        return len(self._cached)

    async def get(self, conversation_id: str) -> Conversation | None:
        cached = self._cached.get(conversation_id)
        if cached is not None:
            return cached
        head = await self._store.read_state(_head_key(conversation_id))
        if head is None:
            return None
        conversation = Conversation(conversation_id, str(head.doc["user_id"]))
        await self._load_new(conversation)
        return self._cached.setdefault(conversation_id, conversation)

    async def open(self, conversation_id: str, user_id: str) -> tuple[Conversation, bool]:
        """Returns the conversation and whether it was created now."""
        existing = await self.get(conversation_id)
        if existing is not None:
            return existing, False
        try:
            await self._store.insert_state(_head_key(conversation_id), {"user_id": user_id})
        except ConcurrencyConflict:
            started = await self.get(conversation_id)  # a sibling started it a moment ago
            if started is None:
                raise
            return started, False
        conversation = Conversation(conversation_id, user_id)
        return self._cached.setdefault(conversation_id, conversation), True

    async def append(self, conversation: Conversation, activity: Activity) -> Activity:
        """Stores the activity with a server-set id and timestamp, then pushes it to subscribers."""
        async with conversation.log_lock:
            timestamp = activity.get("timestamp") or utc_timestamp()
            for _ in range(_APPEND_ATTEMPTS):
                index = len(conversation.activities)
                stored = {**activity, "id": f"{conversation.id}|{index:07d}", "timestamp": timestamp}
                try:
                    await self._store.insert_state(_activity_key(conversation.id, index), stored)
                    break
                except ConcurrencyConflict:
                    # A sibling appended there first: publish what it wrote, take the next slot.
                    self._publish(conversation, await self._load_new(conversation))
            else:
                raise ConcurrencyConflict(f"could not append to conversation {conversation.id}")
            conversation.activities.append(stored)
            conversation.publish(index, stored)
            return stored

    async def refresh(self, conversation: Conversation) -> list[tuple[int, Activity]]:
        """Picks up activities other instances appended; returns (and publishes) them."""
        async with conversation.log_lock:
            fresh = await self._load_new(conversation)
            self._publish(conversation, fresh)
            return fresh

    async def _load_new(self, conversation: Conversation) -> list[tuple[int, Activity]]:
        """Reads the slots after the last known activity up to the first missing one."""
        fresh: list[tuple[int, Activity]] = []
        while True:
            index = len(conversation.activities)
            item = await self._store.read_state(_activity_key(conversation.id, index))
            if item is None:
                return fresh
            conversation.activities.append(item.doc)
            fresh.append((index, item.doc))

    @staticmethod
    def _publish(conversation: Conversation, fresh: list[tuple[int, Activity]]) -> None:
        for index, activity in fresh:
            conversation.publish(index, activity)

    def sweep(self) -> int:
        """Forgets (from memory only) conversations idle for longer than the limit."""
        cutoff = time.monotonic() - self._idle_limit_s
        stale = [
            cid
            for cid, conv in self._cached.items()
            if conv.last_active < cutoff and not conv.subscriptions and not conv.turn_lock.locked()
        ]
        for cid in stale:
            del self._cached[cid]
        return len(stale)
