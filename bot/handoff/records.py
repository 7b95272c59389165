"""What a handoff is, as stored: one record per conversation, and one queue index.

A conversation is `bot` -> `queued` -> `with_agent` -> `bot` (or `closed`). The record
holds everything an agent needs (the packet) and everything said since the customer
asked for a person; the index lists the open handoffs so any app instance can show the
queue without a cross-partition query. Both live in the state store (SQLite or Cosmos
DB), written with ETags, so a restart or a second instance loses nothing.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

MAX_RELAY_LOG = 500
# How much of the conversation before the handoff the agent's transcript starts with.
MAX_EARLIER_LINES = 60
Role = Literal["customer", "bot", "agent", "system"]


class HandoffMode(StrEnum):
    """Who takes a handoff: the app's own agent console, or an external contact centre."""

    CONSOLE = "console"
    EXTERNAL = "external"


class HandoffStatus(StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    WITH_AGENT = "with_agent"
    CLOSED = "closed"


class Trigger(StrEnum):
    """Why the conversation was handed off."""

    ASKED = "customer asked for a person"
    MISUNDERSTOOD = "the bot kept misunderstanding"
    OUT_OF_SCOPE = "a request the bot cannot handle"
    MODEL = "the chat model asked for a person"
    COMPLAINT = "a complaint the bot cannot settle"
    VERIFICATION = "the customer could not be verified"
    SENTIMENT = "the customer stayed unhappy"
    ABUSE = "the customer kept being abusive"


class LogEntry(BaseModel):
    """One line of the conversation as the agent reads it."""

    role: Role
    text: str
    at: float = Field(default_factory=time.time)
    name: str = ""


class OrderLine(BaseModel):
    order_id: str
    status: str
    items: list[str]
    total: str


class Packet(BaseModel):
    """What the agent sees first: why, who, what happened, and the conversation so far."""

    reason: str
    trigger: Trigger
    summary: str
    customer_id: str | None = None
    customer_name: str = ""
    customer_email: str = ""
    orders: list[OrderLine] = Field(default_factory=list)
    actions_taken: list[str] = Field(default_factory=list)
    actions_refused: list[str] = Field(default_factory=list)
    sentiment: list[float] = Field(default_factory=list)


class HandoffRecord(BaseModel):
    conversation_id: str
    channel_id: str
    status: HandoffStatus = HandoffStatus.QUEUED
    # The Bot Framework conversation reference (serialised), for proactive messages.
    reference: dict[str, Any]
    packet: Packet
    log: list[LogEntry] = Field(default_factory=list)
    queued_at: float = Field(default_factory=time.time)
    agent: str | None = None
    agent_name: str = ""
    claimed_at: float | None = None
    ended_at: float | None = None
    awaiting_rating: bool = False
    rating: int | None = None
    # Set by an external contact centre (HANDOFF_MODE=external) instead of the console.
    external: bool = False
    # Bumped on every change, so a console on another instance can tell what moved.
    version: int = 0
    # Earlier handoffs of the same conversation, in brief (who, how it ended, the rating).
    earlier: list[dict[str, Any]] = Field(default_factory=list)

    def outcome(self) -> dict[str, Any]:
        return {
            "reason": self.packet.reason,
            "agent": self.agent,
            "status": self.status.value,
            "queued_at": self.queued_at,
            "ended_at": self.ended_at,
            "rating": self.rating,
        }

    def add(self, role: Role, text: str, name: str = "") -> LogEntry:
        entry = LogEntry(role=role, text=text, name=name)
        self.log.append(entry)
        del self.log[:-MAX_RELAY_LOG]
        return entry

    @property
    def is_open(self) -> bool:
        return self.status in (HandoffStatus.QUEUED, HandoffStatus.WITH_AGENT)


class QueueEntry(BaseModel):
    """A handoff as the queue shows it (the index holds one per open handoff)."""

    conversation_id: str
    status: HandoffStatus
    agent: str | None = None
    queued_at: float
    customer_name: str = ""
    reason: str = ""
    channel_id: str = ""
    # The record's version when the handoff last moved (queued, claimed, ended).
    version: int = 0
    last_text: str = ""


class QueueIndex(BaseModel):
    entries: dict[str, QueueEntry] = Field(default_factory=dict)

    def queued(self) -> list[QueueEntry]:
        waiting = [e for e in self.entries.values() if e.status == HandoffStatus.QUEUED]
        return sorted(waiting, key=lambda e: e.queued_at)

    def position(self, conversation_id: str) -> int:
        """1 for the next in line; 0 when not waiting."""
        for index, entry in enumerate(self.queued(), start=1):
            if entry.conversation_id == conversation_id:
                return index
        return 0
