"""The Direct Line conversation log: every activity of a conversation, in order, with watermarks.

Both directions go through `ConversationRegistry.append`: the customer's activity when it
is posted, and the bot's replies when they reach the Bot Connector endpoint. The log is
kept in the state store (SQLite or Cosmos DB), written before an activity is
acknowledged, so a restarted app, or another instance on the same store, carries on the
same conversations from the same watermarks. Each process keeps a cache of the
conversations it serves and pushes new activities to its WebSocket subscribers.

Store layout: `dl/{id}` is the conversation's head (user id, activity count) and
`dl/{id}/{index}` each activity. An append moves the head with its ETag first, so two
instances appending at once get different indexes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.errors import ConcurrencyConflict
from bot.store.base import StateStore

Activity = dict[str, Any]

# A subscriber that falls this far behind is dropped; its client reconnects from its
# watermark and loses nothing (the log still has every activity).
SUBSCRIBER_QUEUE_LIMIT = 1000
# The index a live-only activity (a typing indicator) is queued with: it is not in the log.
LIVE_ONLY = -2
_APPEND_ATTEMPTS = 20
# A slot the head counts but whose document is still missing this long after the head
# moved belongs to an append that died between its two writes: it becomes a placeholder.
HOLE_GRACE_S = 5.0
_NOT_CAUGHT_UP = "not-caught-up"


def _hole_backoff_s(attempt: int) -> float:
    # A sibling's two writes are normally milliseconds apart; about 1.5 s over all attempts.
    return min(0.1, 0.002 * 2**attempt)


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    head_etag: str | None = None
    # Appends and refreshes of this process take turns, so a refresh never reads a slot
    # between this process's own two writes.
    log_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # False while the head counts an activity a sibling has not written yet.
    caught_up: bool = True

    @property
    def watermark(self) -> int:
        """Index of the newest activity, -1 when there is none."""
        return len(self.activities) - 1

    def since(self, watermark: int | None) -> tuple[list[Activity], int]:
        """Activities after `watermark` (all of them for None), and the new watermark."""
        start = 0 if watermark is None else watermark + 1
        return self.activities[start:], self.watermark

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
        conversation.caught_up = await self._load_activities(conversation, head.doc)
        # Not caught up: an ETag no write can match, so the first append refreshes first.
        conversation.head_etag = head.etag if conversation.caught_up else _NOT_CAUGHT_UP
        return self._cached.setdefault(conversation_id, conversation)

    async def open(self, conversation_id: str, user_id: str) -> tuple[Conversation, bool]:
        """Returns the conversation and whether it was created now."""
        existing = await self.get(conversation_id)
        if existing is not None:
            return existing, False
        etag = await self._store.write_state(_head_key(conversation_id), {"user_id": user_id, "count": 0})
        conversation = Conversation(conversation_id, user_id, head_etag=etag)
        return self._cached.setdefault(conversation_id, conversation), True

    async def append(self, conversation: Conversation, activity: Activity) -> Activity:
        """Stores the activity with a server-set id and timestamp, then pushes it to subscribers."""
        async with conversation.log_lock:
            for attempt in range(_APPEND_ATTEMPTS):
                index = len(conversation.activities)
                head = {"user_id": conversation.user_id, "count": index + 1, "moved_at": time.time()}
                try:
                    conversation.head_etag = await self._store.write_state(
                        _head_key(conversation.id), head, etag=conversation.head_etag
                    )
                    break
                except ConcurrencyConflict:
                    # A sibling appended: take the next index. If its activity is not
                    # written yet, wait for it rather than take its slot.
                    await self._refresh_locked(conversation)
                    await asyncio.sleep(0 if conversation.caught_up else _hole_backoff_s(attempt))
            else:
                raise ConcurrencyConflict(f"could not append to conversation {conversation.id}")
            stored = {**activity, "id": f"{conversation.id}|{index:07d}"}
            stored.setdefault("timestamp", utc_timestamp())
            await self._store.write_state(_activity_key(conversation.id, index), stored)
            conversation.activities.append(stored)
            conversation.publish(index, stored)
            return stored

    async def refresh(self, conversation: Conversation) -> list[tuple[int, Activity]]:
        """Picks up activities other instances appended; returns (and publishes) them."""
        async with conversation.log_lock:
            return await self._refresh_locked(conversation)

    async def _refresh_locked(self, conversation: Conversation) -> list[tuple[int, Activity]]:
        head = await self._store.read_state(_head_key(conversation.id))
        if head is None:
            return []
        before = len(conversation.activities)
        # The head's ETag is adopted only with every activity it counts: an append then
        # takes index = activities loaded, and must not claim a slot a sibling has
        # counted but not written yet (its activity would be overwritten, its id reused).
        conversation.caught_up = await self._load_activities(conversation, head.doc)
        if conversation.caught_up:
            conversation.head_etag = head.etag
        fresh = list(enumerate(conversation.activities))[before:]
        for index, activity in fresh:
            conversation.publish(index, activity)
        return fresh

    async def _load_activities(self, conversation: Conversation, head: dict[str, Any]) -> bool:
        """Loads the activities the head counts; False when a sibling is still writing one."""
        for index in range(len(conversation.activities), int(head["count"])):
            key = _activity_key(conversation.id, index)
            item = await self._store.read_state(key)
            if item is not None:
                conversation.activities.append(item.doc)
                continue
            if time.time() - float(head.get("moved_at", 0)) < HOLE_GRACE_S:
                return False  # a sibling is between its two writes; the next refresh gets it
            # The append died between its writes, so it was never acknowledged. Fill the
            # slot for every instance, so the log can move on.
            placeholder = {"type": "placeholder", "id": f"{conversation.id}|{index:07d}"}
            await self._store.write_state(key, placeholder)
            conversation.activities.append(placeholder)
        return True

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
