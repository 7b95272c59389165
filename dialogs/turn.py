"""The contract between the bot and any dialog engine (offline policy engine, GPT dialog).

A turn is `engine.respond(text, value, state, channel) -> list[Reply]`. Everything the
engine remembers between turns lives in `DialogState`, a pydantic model the bot stores
as JSON with the conversation (so any app instance can serve the next turn), and the
engine never sees Bot Framework types: `bot/` turns a `Reply` into an activity.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from providers.llm.base import TextSink as TextSink  # the sink a streaming engine writes to

EngineName = Literal["offline", "gpt"]

# Caps on what state keeps, so a long conversation's document stays far below Cosmos
# DB's 2 MB item limit; the handoff packet needs the recent past, not all of it.
MAX_TRANSCRIPT = 200
MAX_TOOL_CALLS = 100


class Channel(BaseModel):
    """Where the customer is, as a hint for how to shape replies.

    `id` is the Bot Framework channel id ("webchat", "directline", "msteams",
    "emulator" ...) or "voice" for the phone channel; unknown ids get plain text.
    """

    id: str = "webchat"

    @property
    def is_voice(self) -> bool:
        return self.id == "voice"

    @property
    def renders_cards(self) -> bool:
        return self.id in {"webchat", "directline", "msteams", "emulator", "test"}

    @property
    def renders_suggestions(self) -> bool:
        # Teams ignores suggested actions in most conversation types; voice cannot show them.
        return self.id in {"webchat", "directline", "emulator", "test"}

    @property
    def takes_photos(self) -> bool:
        # A customer can paste or attach a picture in Teams and the Emulator; the shop's
        # Web Chat page has no upload button, and a call has no pictures.
        return self.id in {"msteams", "emulator"}


class Reply(BaseModel):
    """One message from the bot.

    `text` is what a chat channel shows (light markdown); `speak` is the same content as
    plain speakable sentences (the voice channel turns it into SSML); `card` is an
    Adaptive Card (JSON) when the channel renders cards; `suggested_actions` are short
    texts the customer can tap, each sent back as their message.
    """

    text: str
    speak: str = ""
    card: dict[str, Any] | None = None
    suggested_actions: list[str] = Field(default_factory=list)
    engine: EngineName = "offline"
    handoff_requested: bool = False
    handoff_reason: str = ""
    # The customer's sentiment in the message this answers (set on a turn's first reply).
    sentiment: float | None = None


class PendingAction(BaseModel):
    """A consequential tool call waiting for the customer's explicit yes.

    `arguments` are exactly what will run (the verified user id is added at run time,
    never stored here as an argument); `summary` is exactly what the customer was shown.
    `id` lets a confirm button on an old card be told apart from the current proposal.
    """

    id: str
    tool: str
    arguments: dict[str, Any]
    summary: str
    proposed_at_turn: int


class Choice(BaseModel):
    """One option of a question that offers a few (an either/or, "which order?"): the
    label the customer is shown, the value it puts in the awaited slot, and words in the
    customer's own answer that point at it ("by mistake", "the address")."""

    label: str
    value: Any
    words: list[str] = Field(default_factory=list)


class FlowState(BaseModel):
    """The offline engine's current task: its name, the slots filled so far, which slot
    the last question asked for (None when nothing is being asked), and the options that
    question offered, in the order shown (empty when it offered none)."""

    name: str
    slots: dict[str, Any] = Field(default_factory=dict)
    awaiting: str | None = None
    attempts: int = 0
    choices: list[Choice] = Field(default_factory=list)


class QueuedRequest(BaseModel):
    """A request the customer made in the same message as others, waiting its turn: the
    words of that request, the intent they were read as, and the order it names."""

    text: str
    intent: str
    order_id: str | None = None


class TranscriptEntry(BaseModel):
    """One line of the conversation. `note` lines are the bot's own records (a
    recommendation gate's decision and its reason): kept for staff, never shown to the
    customer or a model."""

    role: Literal["user", "bot", "note"]
    text: str
    turn: int
    engine: EngineName | None = None
    intent: str | None = None
    sentiment: float | None = None
    # The message read like instructions to the assistant (content safety): the GPT dialog
    # tells the model it is the customer's text, not instructions.
    injection: bool = False


class ToolCall(BaseModel):
    """A tool the engine ran during `turn`, and whether the tool succeeded."""

    turn: int
    tool: str
    ok: bool
    message: str = ""


class ActionRecord(BaseModel):
    """A consequential action that ran (or was refused by the shop's rules after the yes)."""

    turn: int
    tool: str
    arguments: dict[str, Any]
    ok: bool
    message: str


class SafetyRecord(BaseModel):
    """What content safety noticed in this conversation (`dialogs.safety`)."""

    abusive_messages: int = 0  # a second one goes to a person
    injection_attempts: int = 0
    # The chat was ended after abuse with nobody to hand it to; later messages get one line.
    ended: bool = False
    # The message of the turn being answered reads like instructions (set by the safety
    # check before the dialog runs, cleared after it): `record_user` marks its line.
    injection_now: bool = False


class DialogState(BaseModel):
    """Everything a conversation remembers between turns; JSON in, JSON out."""

    verified_user_id: str | None = None
    customer_first_name: str | None = None
    verification_failures: int = 0
    pending_action: PendingAction | None = None
    flow: FlowState | None = None
    # Further requests of one message ("the status of #W1, and has #W2 shipped?"), taken
    # in order once the task in progress is done (offline engine).
    queued: list[QueuedRequest] = Field(default_factory=list)
    low_confidence_count: int = 0
    # Requests in a row the assistant cannot help with (a second one goes to a person).
    out_of_scope_count: int = 0
    # The last turn whose message the engine did not understand (0: none).
    not_understood_turn: int = 0
    turn: int = 0
    open_complaint: bool = False
    handoff_requested: bool = False
    # The customer's sentiment, one score per message (-1..1), most recent last.
    sentiment: list[float] = Field(default_factory=list)
    person_offered: bool = False  # after sustained negative sentiment
    suggested: bool = False  # products were suggested in this conversation
    suggestions_declined: bool = False
    safety: SafetyRecord = Field(default_factory=SafetyRecord)
    # Chat-model tokens this conversation used, from the API's `usage` (GPT dialog only).
    token_usage: dict[str, int] = Field(default_factory=lambda: {"prompt": 0, "completion": 0})
    transcript: list[TranscriptEntry] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    actions: list[ActionRecord] = Field(default_factory=list)

    def record_user(self, text: str, *, intent: str | None = None) -> None:
        self.transcript.append(
            TranscriptEntry(
                role="user", text=text, turn=self.turn, intent=intent, injection=self.safety.injection_now
            )
        )
        del self.transcript[:-MAX_TRANSCRIPT]

    def record_note(self, text: str) -> None:
        self.transcript.append(TranscriptEntry(role="note", text=text, turn=self.turn))
        del self.transcript[:-MAX_TRANSCRIPT]

    def spoken(self) -> list[TranscriptEntry]:
        """What the customer and the bot said, without the bot's notes."""
        return [entry for entry in self.transcript if entry.role != "note"]

    def record_bot(self, replies: list[Reply]) -> None:
        for reply in replies:
            self.transcript.append(
                TranscriptEntry(role="bot", text=reply.text, turn=self.turn, engine=reply.engine)
            )
        del self.transcript[:-MAX_TRANSCRIPT]

    def record_tool(self, tool: str, ok: bool, message: str = "") -> None:
        self.tool_calls.append(ToolCall(turn=self.turn, tool=tool, ok=ok, message=message[:300]))
        del self.tool_calls[:-MAX_TOOL_CALLS]

    def tools_this_turn(self) -> list[ToolCall]:
        return [call for call in self.tool_calls if call.turn == self.turn]


# What the last question asked for, by the slot it fills: a phone call listens for that
# shape (a grammar, the keypad). Slots not named here are free speech.
_EXPECTED_SHAPE = MappingProxyType(
    {
        "identity": "identity",
        "order_id": "order_id",
        "confirm": "yes_no",
        "offer": "yes_no",
    }
)


def expected_answer(state: DialogState) -> str:
    """The shape of answer the conversation waits for: "yes_no" while an action waits for
    its confirmation, a slot's shape while a question is open, else "dictation"."""
    if state.pending_action is not None:
        return "yes_no"
    if state.flow is not None and state.flow.awaiting:
        return _EXPECTED_SHAPE.get(state.flow.awaiting, "dictation")
    return "dictation"


class DialogEngine(Protocol):
    """What the bot calls once per customer message.

    `text` is the message (may be empty when only `value` is set: an Adaptive Card
    submit); the engine mutates `state` in place and returns the replies in order.
    An engine that `streams` passes the first reply's text to `on_text` piece by piece
    as it is produced (Teams shows it growing, a call speaks it sentence by sentence);
    the returned replies are still complete.
    """

    @property
    def name(self) -> EngineName: ...

    @property
    def streams(self) -> bool: ...

    async def respond(
        self,
        text: str,
        value: dict[str, Any] | None,
        state: DialogState,
        channel: Channel,
        on_text: TextSink | None = None,
    ) -> list[Reply]: ...
