"""What one customer turn asks of the handoff service, kept out of `SupportBot`.

Before the dialog engine runs (only in conversations that asked for a person, so every
other turn costs nothing extra): while an agent holds the conversation the message goes
to the agent and the bot stays silent; after a close, a 1-5 answer is the rating. After
the engine runs: a reply that asks for a person queues the conversation (and says what
happens next), and while it waits what the bot says is added to the agent's view too.

With HANDOFF_MODE=external the request goes out as the Bot Framework `handoff.initiate`
event, with the transcript attached, for a contact centre connected to the bot's channel
(never on Teams, which refuses it); its `handoff.status` events move the state.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes, Attachment

from bot.handoff.records import MAX_EARLIER_LINES, HandoffMode, HandoffStatus, Packet, Role, Trigger
from bot.handoff.service import HandoffService
from dialogs.safety import end_chat
from dialogs.turn import DialogState, Reply

log = logging.getLogger(__name__)

# The property of conversation state that marks a conversation with a handoff record.
HANDOFF_PROPERTY = "handoff"
_RATING = re.compile(r"^\s*([1-5])(\s*(/|of|out of)\s*5)?\s*(stars?)?[.!]?\s*$", re.I)
_TRANSCRIPT_TYPE = "application/vnd.microsoft.activity.transcript"


PacketBuilder = Callable[[DialogState, str, Trigger], Awaitable[Packet]]


@dataclass
class BeforeTurn:
    """`handled`: the message was for the agent (or a rating); the engine does not run."""

    handled: bool = False
    replies: list[Reply] = field(default_factory=list)


def trigger_for(reason: str) -> Trigger:
    lower = reason.lower()
    if "abusive" in lower:
        return Trigger.ABUSE
    if "asked for a person" in lower:
        return Trigger.ASKED
    if "complaint" in lower:
        return Trigger.COMPLAINT
    if "could not be verified" in lower:
        return Trigger.VERIFICATION
    if "outside what the assistant can do" in lower:
        return Trigger.OUT_OF_SCOPE
    if "did not understand" in lower or "could not fill" in lower:
        return Trigger.MISUNDERSTOOD
    if "sentiment" in lower or "unhappy" in lower:
        return Trigger.SENTIMENT
    return Trigger.MODEL


class HandoffDesk:
    def __init__(self, service: HandoffService, build_packet: PacketBuilder, mode: HandoffMode) -> None:
        self.service = service
        self._build_packet = build_packet
        self._mode = mode

    async def before_turn(self, turn_context: TurnContext, text: str, cached: dict[str, Any]) -> BeforeTurn:
        conversation_id = turn_context.activity.conversation.id
        record = await self.service.store.get(conversation_id)
        if record is None or (record.status == HandoffStatus.BOT and not record.awaiting_rating):
            cached.pop(HANDOFF_PROPERTY, None)
            return BeforeTurn()
        if record.status == HandoffStatus.WITH_AGENT:
            await self.service.customer_said(conversation_id, text)
            return BeforeTurn(handled=True)
        if record.awaiting_rating:
            cached.pop(HANDOFF_PROPERTY, None)
            match = _RATING.match(text)
            await self.service.rate(conversation_id, int(match.group(1)) if match else None)
            if match:
                thanks = "Thank you for rating us. Is there anything else I can help with?"
                return BeforeTurn(handled=True, replies=[Reply(text=thanks)])
            return BeforeTurn()
        if record.status == HandoffStatus.QUEUED:
            await self.service.customer_said(conversation_id, text)
        else:
            cached.pop(HANDOFF_PROPERTY, None)  # closed and rated: a new request starts afresh
        return BeforeTurn()

    async def after_turn(
        self, turn_context: TurnContext, cached: dict[str, Any], state: DialogState, replies: list[Reply]
    ) -> list[Reply]:
        """Extra replies for the customer (what happens next), after the engine's."""
        conversation_id = turn_context.activity.conversation.id
        asked = next((reply for reply in replies if reply.handoff_requested), None)
        if cached.get(HANDOFF_PROPERTY) and asked is None:
            await self.service.bot_said(conversation_id, [reply.text for reply in replies])
            return []
        if asked is None:
            return []
        reason = asked.handoff_reason or "the customer asked for a person"
        activity = turn_context.activity
        trigger = trigger_for(reason)
        if trigger == Trigger.ABUSE and not await self._someone_takes_it(activity.channel_id):
            # Abuse with nobody to hand it to: the chat ends politely rather than the bot
            # carrying on, or the customer waiting for an agent who is not there.
            return [end_chat(state, "abusive messages and no agent online")]
        packet = await self._build_packet(state, reason, trigger)
        reference = TurnContext.get_conversation_reference(activity).serialize()
        transcript: list[tuple[Role, str]] = [
            ("customer" if entry.role == "user" else "bot", entry.text)
            for entry in state.spoken()[-MAX_EARLIER_LINES:]
        ]
        _, next_step = await self.service.request(
            conversation_id, activity.channel_id, reference, packet, transcript
        )
        cached[HANDOFF_PROPERTY] = True
        if self._mode == HandoffMode.EXTERNAL and activity.channel_id != "msteams":
            await turn_context.send_activity(_handoff_initiation(turn_context, packet, state))
            return [Reply(text="I've passed you to our support team; an agent will join this chat shortly.")]
        return [Reply(text=next_step)]

    async def _someone_takes_it(self, channel_id: str) -> bool:
        if self._mode == HandoffMode.EXTERNAL and channel_id != "msteams":
            return True  # the contact centre takes it (or says it failed)
        return await self.service.anyone_online()

    async def on_status(self, turn_context: TurnContext) -> None:
        """A contact centre's `handoff.status` event: accepted, failed or completed."""
        value = turn_context.activity.value if isinstance(turn_context.activity.value, dict) else {}
        state = str(value.get("state", "")).lower()
        conversation_id = turn_context.activity.conversation.id
        if state not in {"accepted", "failed", "completed"}:
            log.warning("handoff.status with an unknown state %r ignored", state)
            return
        await self.service.external_status(conversation_id, state)
        if state == "failed":
            await turn_context.send_activity(
                "I'm sorry, I couldn't reach an agent just now. I'm still here: what can I do for you?"
            )


def _handoff_initiation(turn_context: TurnContext, packet: Packet, state: DialogState) -> Activity:
    """The `handoff.initiate` event as the Bot Framework defines it: the handoff context as
    its value, the transcript as an attachment."""
    reference = TurnContext.get_conversation_reference(turn_context.activity)
    transcript = [
        {
            "type": "message",
            "text": entry.text,
            "from": {"role": "user" if entry.role == "user" else "bot"},
            "conversation": {"id": reference.conversation.id},
        }
        for entry in state.spoken()
    ]
    return Activity(
        type=ActivityTypes.event,
        name="handoff.initiate",
        value={
            "reason": packet.reason,
            "summary": packet.summary,
            "customer": {"id": packet.customer_id, "name": packet.customer_name},
        },
        attachments=[
            Attachment(content_type=_TRANSCRIPT_TYPE, content={"activities": transcript}, name="Transcript")
        ],
    )
