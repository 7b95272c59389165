"""The confirmation gate: the one place that decides whether a consequential action runs.

A consequential tool call never runs when it is made; it becomes `state.pending_action`
with the exact summary shown to the customer. The customer's next message then either
is an explicit yes (the action runs, exactly as summarised, for the verified customer)
or is anything else, which drops the proposal: a "no" declines it, any other message
supersedes it (the engine may then propose an amended action, which again needs a yes).
Both engines call `on_message` first thing on every turn, so neither a model nor a flow
can skip it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from dialogs.turn import DialogState, PendingAction

if TYPE_CHECKING:
    from dialogs.tools.definition import ToolResult

Runner = Callable[[PendingAction, DialogState], Awaitable["ToolResult"]]

# Words that make a whole message an unambiguous yes. "ok" alone is left out on purpose:
# customers say it to acknowledge what they read, not to agree to a refund.
_YES = frozenset(
    {
        "yes",
        "y",
        "yeah",
        "yep",
        "yup",
        "ya",
        "sure",
        "confirm",
        "confirmed",
        "correct",
        "absolutely",
        "definitely",
        "affirmative",
        "proceed",
        "right",
    }
)
_YES_PHRASES = (
    "go ahead",
    "do it",
    "please do",
    "that's right",
    "that is right",
    "that's correct",
    "sounds good",
    "i confirm",
    "i agree",
    "let's do it",
    "lets do it",
    "yes please",
    "ok go ahead",
    "okay go ahead",
    "ok do it",
    "okay do it",
    "that's fine",
    "go for it",
)
# Harmless words around a yes ("yes please, thanks!").
_FILLER = frozenset(
    {"please", "thanks", "thank", "you", "ok", "okay", "and", "so", "then", "that", "it", "is", "fine"}
)
# Whole-message refusals. A "no" that goes on to say something else ("no, use my PayPal")
# is not a refusal but an amendment, which the engine reads for the new details.
_NO_PHRASES = (
    "no thank you",
    "no thanks",
    "don't do it",
    "don't do that",
    "do not do it",
    "do not do that",
    "i changed my mind",
    "changed my mind",
    "i don't want that",
    "i don't want to",
    "never mind",
    "not now",
    "not yet",
    "hold on",
    "leave it",
    "forget it",
    "cancel it",
    "cancel that",
    "no way",
    "please don't",
    "do not",
    "don't",
)
_NO = frozenset({"no", "nope", "nah", "n", "stop", "cancel", "nevermind", "wait", "negative"})
_NO_FILLER = frozenset(
    {"please", "thanks", "ok", "okay", "actually", "sorry", "then", "oh", "hmm", "um", "i", "so"}
)


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w'\s]", " ", text.lower()).split())


def is_explicit_yes(text: str) -> bool:
    """True when the whole message is an agreement and says nothing else
    ("yes", "yes please, go ahead"; not "yes but use PayPal", not "ok")."""
    words = _words(text)
    if len(words.split()) > 10:
        return False
    for phrase in _YES_PHRASES:
        words = words.replace(phrase, " yes ")
    tokens = words.split()
    return bool(tokens) and all(t in _YES | _FILLER for t in tokens) and any(t in _YES for t in tokens)


def is_no(text: str) -> bool:
    """True when the whole message is a refusal ("no", "no thanks", "don't do it")."""
    words = _words(text)
    if len(words.split()) > 8:
        return False
    for phrase in _NO_PHRASES:
        words = words.replace(phrase, " no ")
    tokens = words.split()
    return bool(tokens) and all(t in _NO | _NO_FILLER for t in tokens) and any(t in _NO for t in tokens)


class GateOutcome(BaseModel):
    """What the gate made of a message: `none` (nothing was pending), `confirmed` (the
    action ran; see `result`), `declined` (a no), `superseded` (something else)."""

    kind: Literal["none", "confirmed", "declined", "superseded"]
    pending: PendingAction | None = None
    result: Any = None


class ConfirmationGate:
    """Proposes consequential actions and runs them only on the next message's yes."""

    def __init__(self, run: Runner) -> None:
        self._run = run

    def propose(
        self, state: DialogState, tool: str, arguments: dict[str, Any], summary: str
    ) -> PendingAction:
        """Records the proposal (replacing any earlier one) and returns it."""
        pending = PendingAction(
            id=uuid.uuid4().hex[:12],
            tool=tool,
            arguments=arguments,
            summary=summary,
            proposed_at_turn=state.turn,
        )
        state.pending_action = pending
        return pending

    async def on_message(self, state: DialogState, text: str, value: dict[str, Any] | None) -> GateOutcome:
        """Call once per customer message, after `state.turn` moved on, before anything else."""
        pending = state.pending_action
        if pending is None:
            return GateOutcome(kind="none")
        # One shot: whatever this message is, the proposal does not outlive it.
        state.pending_action = None
        if pending.proposed_at_turn != state.turn - 1:
            return GateOutcome(kind="superseded", pending=pending)
        if self._confirms(pending, text, value):
            result = await self._run(pending, state)
            return GateOutcome(kind="confirmed", pending=pending, result=result)
        if self._declines(text, value):
            return GateOutcome(kind="declined", pending=pending)
        return GateOutcome(kind="superseded", pending=pending)

    @staticmethod
    def _confirms(pending: PendingAction, text: str, value: dict[str, Any] | None) -> bool:
        if value and value.get("action") == "confirm":
            # A button on an older card must not confirm a newer, different proposal.
            return value.get("pending_id") == pending.id
        return is_explicit_yes(text)

    @staticmethod
    def _declines(text: str, value: dict[str, Any] | None) -> bool:
        if value and value.get("action") == "decline":
            return True
        return is_no(text)
