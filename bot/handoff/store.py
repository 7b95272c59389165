"""Handoff records and the queue index in the state store, changed only by
read-modify-write with the ETag read, so two instances (or a turn and an agent) never
overwrite each other: the loser re-reads and applies its change again."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel

from bot.handoff.records import HandoffRecord, QueueEntry, QueueIndex
from shop.errors import ConcurrencyConflict
from shop.store.base import StateStore

log = logging.getLogger(__name__)

INDEX_KEY = "handoff/index"
_ATTEMPTS = 20
Model = TypeVar("Model", bound=BaseModel)


def record_key(conversation_id: str) -> str:
    return f"handoff/conversation/{conversation_id}"


class HandoffStore:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def get(self, conversation_id: str) -> HandoffRecord | None:
        found = await self._store.read_state(record_key(conversation_id))
        return HandoffRecord.model_validate(found.doc) if found else None

    async def index(self) -> tuple[QueueIndex, str | None]:
        """The queue index and its ETag (None while nothing was ever queued)."""
        found = await self._store.read_state(INDEX_KEY)
        if found is None:
            return QueueIndex(), None
        return QueueIndex.model_validate(found.doc), found.etag

    async def change(
        self, conversation_id: str, edit: Callable[[HandoffRecord | None], HandoffRecord | None]
    ) -> HandoffRecord | None:
        """Applies `edit` to the current record (None when there is none) and stores what
        it returns, and mirrors a move (queued, claimed, ended) in the queue index.
        `edit` may run more than once (after a conflict) and returns None to change nothing."""
        moved = False

        def edit_and_note(current: HandoffRecord | None) -> HandoffRecord | None:
            nonlocal moved
            before = (current.status, current.agent) if current is not None else None
            changed = edit(current)
            if changed is not None:
                changed.version += 1
                moved = before != (changed.status, changed.agent)
            return changed

        record = await self._update(record_key(conversation_id), HandoffRecord, edit_and_note)
        # The index changes only when a handoff moves (queued, claimed, ended): the one
        # document every conversation shares is not written on every message.
        if record is not None and moved:
            await self._mirror(record)
        return record

    async def forget(self, conversation_id: str) -> bool:
        """Deletes the conversation's record and its queue entry (a customer's erasure
        request); True when there was a record."""
        existed = await self._store.read_state(record_key(conversation_id)) is not None
        # The entry first: an index entry never points at a record that is gone.
        await self._drop_entries({conversation_id: None})
        await self._store.delete_state(record_key(conversation_id))
        return existed

    async def prune_index(self) -> int:
        """Drops queue entries whose record is gone (expired or deleted); returns how many.
        One read per entry: the index holds only open handoffs."""
        index, _ = await self.index()
        records = await asyncio.gather(*(self.get(cid) for cid in index.entries))
        gone = {
            cid: entry.version
            for (cid, entry), record in zip(index.entries.items(), records, strict=True)
            if record is None
        }
        return await self._drop_entries(gone) if gone else 0

    async def _drop_entries(self, entries: Mapping[str, int | None]) -> int:
        """Removes the given conversations' entries from the index: each only at the
        version given (None: any), so a handoff queued again meanwhile keeps its entry."""
        dropped = 0

        def edit(index: QueueIndex | None) -> QueueIndex | None:
            nonlocal dropped
            if index is None:
                return None
            doomed = [
                cid
                for cid, version in entries.items()
                if cid in index.entries and version in (None, index.entries[cid].version)
            ]
            for cid in doomed:
                del index.entries[cid]
            dropped = len(doomed)
            return index if doomed else None

        await self._update(INDEX_KEY, QueueIndex, edit)
        return dropped

    async def _mirror(self, record: HandoffRecord) -> None:
        def edit(index: QueueIndex | None) -> QueueIndex:
            index = index or QueueIndex()
            if record.is_open:
                last = record.log[-1].text if record.log else ""
                index.entries[record.conversation_id] = QueueEntry(
                    conversation_id=record.conversation_id,
                    status=record.status,
                    agent=record.agent,
                    queued_at=record.queued_at,
                    customer_name=record.packet.customer_name,
                    reason=record.packet.reason,
                    channel_id=record.channel_id,
                    version=record.version,
                    last_text=last[:160],
                )
            else:
                index.entries.pop(record.conversation_id, None)
            return index

        await self._update(INDEX_KEY, QueueIndex, edit)

    async def _update(
        self, key: str, model: type[Model], edit: Callable[[Model | None], Model | None]
    ) -> Model | None:
        for attempt in range(_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.005 * attempt))  # spread the retries
            found = await self._store.read_state(key)
            current = model.model_validate(found.doc) if found else None
            changed = edit(current)
            if changed is None:
                return current
            doc = changed.model_dump(mode="json")
            try:
                if found is None:
                    await self._store.insert_state(key, doc)
                else:
                    await self._store.write_state(key, doc, etag=found.etag)
            except ConcurrencyConflict:
                continue
            return changed
        raise ConcurrencyConflict(f"{key} kept changing; the handoff change was not saved")
