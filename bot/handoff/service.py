"""The handoff service: queueing a conversation for a person, relaying both ways while an
agent holds it, handing back or closing, and telling every open console what changed.

Customers always hear what happens next: their place in the queue, or, when no agent is
online, the support hours and that they may leave a message (the bot keeps helping until
an agent claims the conversation). While an agent holds it the bot stays silent and
every customer message goes to the agent; agent messages reach the customer on any
channel (`CustomerDelivery`).

Consoles learn of changes from an in-process event stream; changes made by another app
instance are noticed by polling the queue index in the store once a second (its ETag
tells whether anything moved), so two instances on one store share one queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from bot.handoff.records import HandoffRecord, HandoffStatus, Packet, QueueIndex, Role
from bot.handoff.store import HandoffStore
from shop import telemetry
from shop.errors import AftercareError

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0
Event = dict[str, Any]


class HandoffError(AftercareError):
    """An agent action that does not fit the conversation's state (already claimed ...)."""

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class CustomerDelivery(Protocol):
    """Sends a message into the customer's conversation, whatever the channel."""

    async def __call__(
        self,
        record: HandoffRecord,
        text: str,
        *,
        sender: str | None = None,
        suggestions: list[str] | None = None,
    ) -> None: ...


class HandoffService:
    def __init__(self, store: HandoffStore, deliver: CustomerDelivery, *, support_hours: str) -> None:
        self.store = store
        self._deliver = deliver
        self._support_hours = support_hours
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._online: Callable[[], Awaitable[list[str]]] | None = None
        self._seen_etag: str | None = None
        self._seen_versions: dict[str, int] = {}

    def watch_presence(self, online: Callable[[], Awaitable[list[str]]]) -> None:
        self._online = online

    # -- the customer's side ------------------------------------------------------------------

    async def request(
        self,
        conversation_id: str,
        channel_id: str,
        reference: dict[str, Any],
        packet: Packet,
        transcript: list[tuple[Role, str]],
    ) -> tuple[HandoffRecord, str]:
        """Queues the conversation (once: a second request keeps its place) with the
        conversation so far, and returns the record and the sentence telling the
        customer what happens next (also added to the record)."""

        def queue(current: HandoffRecord | None) -> HandoffRecord | None:
            if current is not None and current.is_open:
                return None
            record = HandoffRecord(
                conversation_id=conversation_id, channel_id=channel_id, reference=reference, packet=packet
            )
            if current is not None:  # an earlier handoff of this conversation, ended: kept in brief
                record.earlier = [*current.earlier, current.outcome()]
            for role, text in transcript:
                record.add(role, text)
            record.add("system", f"Handed off: {packet.reason}")
            return record

        record = await self.store.change(conversation_id, queue)
        assert record is not None
        telemetry.HANDOFFS.labels(str(packet.trigger)).inc()
        next_step = await self.what_happens_next(record)
        await self.bot_said(conversation_id, [next_step])
        return record, next_step

    async def anyone_online(self) -> bool:
        """Whether an agent is signed in to the console now."""
        return bool(await self._online()) if self._online else False

    async def what_happens_next(self, record: HandoffRecord) -> str:
        if record.status == HandoffStatus.WITH_AGENT:
            return f"{record.agent_name or 'A support agent'} is already with you in this chat."
        index, _ = await self.store.index()
        position = index.position(record.conversation_id) or 1
        online = await self._online() if self._online else []
        if not online:
            return (
                "No one from our support team is online right now; they are available "
                f"{self._support_hours}. Your request is saved: leave any details here and "
                "an agent will reply in this chat when they're back. Meanwhile I can keep helping."
            )
        ahead = "You're next in line" if position == 1 else f"You're number {position} in the queue"
        return f"{ahead}; an agent will join this chat shortly. Meanwhile I can keep helping."

    async def customer_said(self, conversation_id: str, text: str) -> HandoffRecord | None:
        """Adds the customer's message to an open handoff; returns the record as it is now."""

        def add(current: HandoffRecord | None) -> HandoffRecord | None:
            if current is None or not current.is_open:
                return None
            current.add("customer", text)
            return current

        record = await self.store.change(conversation_id, add)
        if record is not None and record.is_open:
            self._publish(
                {"type": "message", "conversation_id": conversation_id, "role": "customer", "text": text}
            )
        return record

    async def bot_said(self, conversation_id: str, texts: list[str]) -> None:
        def add(current: HandoffRecord | None) -> HandoffRecord | None:
            if current is None or not current.is_open:
                return None
            for text in texts:
                current.add("bot", text)
            return current

        if texts and await self.store.change(conversation_id, add) is not None:
            self._publish({"type": "message", "conversation_id": conversation_id, "role": "bot"})

    async def rate(self, conversation_id: str, rating: int | None) -> None:
        """Stores the customer's 1-5 rating after a close (None: they moved on without one)."""

        def store_rating(current: HandoffRecord | None) -> HandoffRecord | None:
            if current is None or not current.awaiting_rating:
                return None
            current.awaiting_rating = False
            current.rating = rating
            current.add("system", f"Rated {rating} of 5" if rating else "No rating given")
            return current

        await self.store.change(conversation_id, store_rating)

    # -- the agent's side ---------------------------------------------------------------------

    async def claim(self, conversation_id: str, agent: str, agent_name: str) -> HandoffRecord:
        def take(current: HandoffRecord | None) -> HandoffRecord | None:
            if current is None or not current.is_open:
                raise HandoffError("that conversation is not waiting for an agent", status=404)
            if current.status == HandoffStatus.WITH_AGENT and current.agent != agent:
                raise HandoffError(f"{current.agent} has already taken that conversation")
            if current.status == HandoffStatus.WITH_AGENT:
                return None
            current.status = HandoffStatus.WITH_AGENT
            current.agent, current.agent_name = agent, agent_name
            current.claimed_at = time.time()
            current.add("system", f"{agent_name} joined")
            return current

        record = await self.store.change(conversation_id, take)
        assert record is not None
        if record.claimed_at is not None:
            telemetry.HANDOFF_WAIT.observe(max(0.0, record.claimed_at - record.queued_at))
        await self._deliver(
            record,
            f"Hi, this is {agent_name} from the support team. I've read our chat so far; how can I help?",
            sender=agent_name,
        )
        self._publish({"type": "queue"})
        return record

    async def agent_said(self, conversation_id: str, agent: str, text: str) -> HandoffRecord:
        text = text.strip()
        if not text:
            raise HandoffError("the message is empty", status=400)
        if len(text) > 4000:
            raise HandoffError("the message is longer than 4,000 characters", status=400)

        def add(current: HandoffRecord | None) -> HandoffRecord | None:
            self._require_holder(current, agent)
            assert current is not None
            current.add("agent", text, name=current.agent_name)
            return current

        record = await self.store.change(conversation_id, add)
        assert record is not None
        await self._deliver(record, text, sender=record.agent_name)
        self._publish({"type": "message", "conversation_id": conversation_id, "role": "agent", "text": text})
        return record

    async def hand_back(self, conversation_id: str, agent: str) -> HandoffRecord:
        def back(current: HandoffRecord | None) -> HandoffRecord | None:
            self._require_holder(current, agent)
            assert current is not None
            current.status = HandoffStatus.BOT
            current.ended_at = time.time()
            current.add("system", f"{current.agent_name} handed the chat back to the assistant")
            return current

        record = await self.store.change(conversation_id, back)
        assert record is not None
        await self._deliver(
            record,
            f"{record.agent_name} has handed you back to me, Aftercare's assistant. "
            "What else can I do for you?",
        )
        self._publish({"type": "queue"})
        return record

    async def close(self, conversation_id: str, agent: str) -> HandoffRecord:
        def end(current: HandoffRecord | None) -> HandoffRecord | None:
            self._require_holder(current, agent)
            assert current is not None
            current.status = HandoffStatus.CLOSED
            current.ended_at = time.time()
            current.awaiting_rating = True
            current.add("system", f"{current.agent_name} closed the chat")
            return current

        record = await self.store.change(conversation_id, end)
        assert record is not None
        await self._deliver(
            record,
            f"{record.agent_name} has closed this chat. How would you rate the help you got, "
            "from 1 (poor) to 5 (excellent)?",
            suggestions=["1", "2", "3", "4", "5"],
        )
        self._publish({"type": "queue"})
        return record

    async def external_status(self, conversation_id: str, state: str) -> None:
        """A contact centre (HANDOFF_MODE=external) accepted, failed or completed the handoff."""

        def move(current: HandoffRecord | None) -> HandoffRecord | None:
            if current is None or not current.is_open:
                return None
            current.external = True
            if state == "accepted":
                current.status = HandoffStatus.WITH_AGENT
                current.agent, current.agent_name = "contact-centre", "Contact centre"
                current.claimed_at = time.time()
            else:
                current.status = HandoffStatus.BOT
                current.ended_at = time.time()
            current.add("system", f"Contact centre: {state}")
            return current

        await self.store.change(conversation_id, move)
        self._publish({"type": "queue"})

    async def visible_to(self, conversation_id: str, agent: str) -> HandoffRecord:
        """The record, if `agent` may see it: waiting in the queue, or held by them."""
        record = await self.store.get(conversation_id)
        if record is None or not record.is_open:
            raise HandoffError("no open handoff for that conversation", status=404)
        if record.status == HandoffStatus.WITH_AGENT and record.agent != agent:
            raise HandoffError("another agent holds that conversation", status=403)
        return record

    async def queue_for(self, agent: str) -> list[dict[str, Any]]:
        """What `agent` sees: everything waiting, and what they hold."""
        index, _ = await self.store.index()
        shown = [
            entry.model_dump(mode="json")
            for entry in sorted(index.entries.values(), key=lambda e: e.queued_at)
            if entry.status == HandoffStatus.QUEUED or entry.agent == agent
        ]
        return shown

    @staticmethod
    def _require_holder(record: HandoffRecord | None, agent: str) -> None:
        if record is None or record.status != HandoffStatus.WITH_AGENT:
            raise HandoffError("that conversation is not with an agent", status=409)
        if record.agent != agent:
            raise HandoffError("another agent holds that conversation", status=403)

    # -- events for the consoles ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def close_streams(self) -> None:
        """Ends every console's event stream (the app is stopping)."""
        self._publish({"type": "closing"})

    def _publish(self, event: Event) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    async def poll_forever(self) -> None:
        """Publishes what other instances changed (the index's ETag moved)."""
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            try:
                await self.poll_once()
            except AftercareError as exc:
                log.warning("handoff queue poll failed: %s", exc)

    async def prime(self) -> None:
        """Takes the queue as it stands at start-up, so only later changes are news."""
        index, self._seen_etag = await self.store.index()
        await self._changed_records(index)

    async def poll_once(self) -> None:
        """Publishes what changed in the store since the last look: the queue (its index's
        ETag moved) and each open conversation whose record has a new version (a message
        written by another instance). One read, plus one per open handoff."""
        index, etag = await self.store.index()
        telemetry.HANDOFF_QUEUE.set(len(index.queued()))
        if etag != self._seen_etag:
            self._seen_etag = etag
            self._publish({"type": "queue"})
        for conversation_id in await self._changed_records(index):
            self._publish({"type": "message", "conversation_id": conversation_id})

    async def _changed_records(self, index: QueueIndex) -> list[str]:
        open_ids = list(index.entries)
        records = await asyncio.gather(*(self.store.get(cid) for cid in open_ids))
        versions = {cid: record.version for cid, record in zip(open_ids, records, strict=True) if record}
        changed = [
            cid for cid, version in versions.items() if self._seen_versions.get(cid, version) != version
        ]
        self._seen_versions = versions
        return changed
