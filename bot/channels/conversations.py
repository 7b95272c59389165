"""The Direct Line conversation log: every activity of a conversation, in order, with watermarks.

Both directions go through `append`: the customer's activity when it is posted, and the
bot's replies when they arrive at the Bot Connector endpoint. Readers either poll from
a watermark or subscribe for a push of each new activity (the WebSocket stream).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Activity = dict[str, Any]

# A subscriber that falls this far behind is dropped; its client reconnects from its
# watermark and loses nothing (the log still has every activity).
SUBSCRIBER_QUEUE_LIMIT = 1000


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SubscriberOverflow(Exception):
    """The subscriber could not keep up and was detached."""


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
    # Turns of one conversation run one at a time, in arrival order (asyncio locks are FIFO).
    turn_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_active: float = field(default_factory=time.monotonic)
    # The customer activity whose turn is running; the bot's replies during it answer it.
    # (BotBuilder leaves replyToId empty on Direct Line, so the channel fills it in.)
    answering: str | None = None

    @property
    def watermark(self) -> int:
        """Index of the newest activity, -1 when there is none."""
        return len(self.activities) - 1

    def append(self, activity: Activity) -> Activity:
        """Stores the activity with a server-set id and timestamp, then pushes it to subscribers."""
        index = len(self.activities)
        stored = dict(activity)
        stored["id"] = f"{self.id}|{index:07d}"
        stored.setdefault("timestamp", utc_timestamp())
        self.activities.append(stored)
        self.last_active = time.monotonic()
        for subscription in list(self.subscriptions):
            try:
                subscription.queue.put_nowait((index, stored))
            except asyncio.QueueFull:
                subscription.overflowed = True
                self.subscriptions.discard(subscription)
        return stored

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


class ConversationRegistry:
    """All live Direct Line conversations of this process."""

    def __init__(self, idle_limit_s: float) -> None:
        self._conversations: dict[str, Conversation] = {}
        self._idle_limit_s = idle_limit_s

    def __len__(self) -> int:
        return len(self._conversations)

    def get(self, conversation_id: str) -> Conversation | None:
        return self._conversations.get(conversation_id)

    def open(self, conversation_id: str, user_id: str) -> tuple[Conversation, bool]:
        """Returns the conversation and whether it was created now."""
        existing = self._conversations.get(conversation_id)
        if existing is not None:
            return existing, False
        conversation = Conversation(conversation_id, user_id)
        self._conversations[conversation_id] = conversation
        return conversation, True

    def sweep(self) -> int:
        """Forgets conversations idle for longer than the limit; returns how many."""
        cutoff = time.monotonic() - self._idle_limit_s
        stale = [
            cid
            for cid, conv in self._conversations.items()
            if conv.last_active < cutoff and not conv.subscriptions and not conv.turn_lock.locked()
        ]
        for cid in stale:
            del self._conversations[cid]
        return len(stale)
