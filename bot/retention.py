"""How long conversation data is kept, and erasing one customer's conversations.

The shop's privacy policy (`prompts/knowledge/privacy.md`) promises chats are kept "for up
to 90 days": `RETENTION_DAYS` after its last write, a document of conversation data
expires. This module is the one place that says which state documents those are; the
store only applies the `RetentionPolicy` it is opened with (a `ttl` on each item in
Cosmos DB, which deletes them itself; `purge_expired`, run hourly by the app, on SQLite).

Conversation data, by the keys its owners write:

    {channelId}/conversations/{conversationId}   conversation state (Bot Framework ConversationState)
    dl/{conversationId}, dl/{conversationId}/N   the local Direct Line log (bot.channels.directline_log)
    handoff/conversation/{conversationId}        a handoff to a person (bot.handoff.store)
    agent/session/{id}                           an agent's sign-in (lapses after 12 hours anyway)

Everything else is configuration, kept until deleted: `dl/signing-key`,
`calls/ticket-key`, `agent/account/*`, `agent/presence`, `handoff/index` (kept free of
entries whose record is gone by `HandoffStore.prune_index`), the product vectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bot.handoff.store import HandoffStore, record_key
from bot.support_bot import DIALOG_PROPERTY
from shop.errors import AftercareError
from shop.store.base import RetentionPolicy, StateStore

log = logging.getLogger(__name__)

DAY_S = 86_400
# How often the app deletes what has expired (SQLite; on Cosmos DB only the handoff index
# is tidied). Documents live at most this much past RETENTION_DAYS.
PURGE_INTERVAL_S = 3600

_CONVERSATION_STATE = re.compile(r"(?P<channel>[^/]+)/conversations/(?P<conversation>.+)")
_DIRECT_LINE = "dl/"
_DIRECT_LINE_KEY = "dl/signing-key"
_HANDOFF = record_key("")
_AGENT_SESSION = "agent/session/"


def is_conversation_data(key: str) -> bool:
    """True for a state document that expires (see the module's docstring)."""
    if key.startswith(_DIRECT_LINE):
        return key != _DIRECT_LINE_KEY
    return key.startswith((_HANDOFF, _AGENT_SESSION)) or _CONVERSATION_STATE.fullmatch(key) is not None


def conversation_retention(days: int) -> RetentionPolicy:
    """The policy the app's store is opened with: conversation data kept `days` days."""
    return RetentionPolicy(max_age_s=days * DAY_S, applies_to=is_conversation_data)


async def purge_once(state: StateStore) -> int:
    """Deletes the conversation data that has expired, and the queue entries of handoffs
    whose record went; returns the number of documents deleted."""
    purged = await state.purge_expired()
    unqueued = await HandoffStore(state).prune_index()
    if purged or unqueued:
        # Counts only: ids would put the customers' conversations back into the logs.
        log.info("retention: purged %d expired conversation documents, %d queue entries", purged, unqueued)
    return purged


@contextlib.asynccontextmanager
async def purging(state: StateStore, every_s: float = PURGE_INTERVAL_S) -> AsyncIterator[None]:
    """Runs `purge_once` now (in the background: start-up does not wait) and every
    `every_s` seconds while the block runs."""

    async def forever() -> None:
        while True:
            try:
                await purge_once(state)
            except AftercareError as exc:  # the store is down: the next round tries again
                log.warning("retention: the purge failed: %s", exc)
            except Exception:  # a bug: logged, and neither the app nor its shutdown stops
                log.exception("retention: the purge failed")
            await asyncio.sleep(every_s)

    task = asyncio.create_task(forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Erased:
    """What `forget_customer` deleted, as counts."""

    conversations: int = 0
    conversation_states: int = 0
    directline_activities: int = 0
    handoff_records: int = 0


async def forget_customer(state: StateStore, user_id: str) -> Erased:
    """Erases every conversation the customer was verified in: its Direct Line log, its
    handoff record (and queue entry), and its conversation state. Orders and the customer
    record are the order store's and stay.

    One scan of the state keys (a staff operation, off the turn path), then point reads
    and deletes. A conversation's state goes last: it is what names the customer, so a
    run that stops half-way finds the conversation again when repeated.
    """
    handoffs = HandoffStore(state)
    states: dict[str, str] = {}  # conversation id -> its conversation state key
    handed_off: set[str] = set()  # conversations with a handoff record naming the customer
    async for key in state.iter_state_keys(""):
        match = _CONVERSATION_STATE.fullmatch(key)
        if match and await _verified_user(state, key) == user_id:
            states[match["conversation"]] = key
        elif key.startswith(_HANDOFF) and await _handoff_customer(state, key) == user_id:
            # Its conversation's state may have expired or gone first.
            handed_off.add(key.removeprefix(_HANDOFF))
    erased = Erased(conversations=len(states.keys() | handed_off))
    for conversation_id in sorted(states.keys() | handed_off):
        erased.directline_activities += await _forget_directline_log(state, conversation_id)
        erased.handoff_records += await handoffs.forget(conversation_id)
        if conversation_id in states:
            await state.delete_state(states[conversation_id])
            erased.conversation_states += 1
    return erased


async def _verified_user(state: StateStore, key: str) -> str | None:
    found = await state.read_state(key)
    dialog = found.doc.get(DIALOG_PROPERTY) if found else None
    user = dialog.get("verified_user_id") if isinstance(dialog, dict) else None
    return user if isinstance(user, str) else None


async def _handoff_customer(state: StateStore, key: str) -> str | None:
    found = await state.read_state(key)
    packet = found.doc.get("packet") if found else None  # a HandoffRecord's
    user = packet.get("customer_id") if isinstance(packet, dict) else None
    return user if isinstance(user, str) else None


async def _forget_directline_log(state: StateStore, conversation_id: str) -> int:
    """Deletes the conversation's Direct Line log (none for other channels); returns the
    number of activities it held."""
    head = f"{_DIRECT_LINE}{conversation_id}"
    if not is_conversation_data(head):
        return 0
    activities = [key async for key in state.iter_state_keys(f"{head}/")]
    for key in activities:
        await state.delete_state(key)
    # The head last: while it exists, a reader still finds the log and its end.
    await state.delete_state(head)
    return len(activities)
