"""SupportBot: the ActivityHandler every channel talks to."""

from __future__ import annotations

import logging
import time
from typing import Any

from botbuilder.core import ActivityHandler, ConversationState, MessageFactory, TurnContext
from botbuilder.schema import Attachment, ChannelAccount

from bot.handoff.desk import HANDOFF_PROPERTY, HandoffDesk
from bot.redaction import redaction_notice
from bot.replies import channel_for, to_activity, typing
from bot.streaming import SentenceStream, TeamsStream
from bot.telemetry import CONVERSATION
from dialogs.turn import Channel, DialogEngine, DialogState, Reply, expected_answer
from shop import telemetry
from shop.errors import ConcurrencyConflict
from shop.telemetry import content_policy, set_content, span

log = logging.getLogger(__name__)

WELCOME = (
    "Hi, I'm Aftercare, the shop's support assistant. I can help with your orders, "
    "deliveries, returns, refunds and warranty questions. What can I do for you?"
)

# The property of conversation state that holds the dialog's record of the conversation.
DIALOG_PROPERTY = "dialog"
# The property holding the id of the last activity whose turn was saved.
LAST_ACTIVITY_PROPERTY = "last_activity_id"
INTERRUPTED = (
    "Sorry, I was interrupted before I could answer that. Could you tell me once more what you need?"
)
# A turn that loses an ETag race is recomputed on the fresh state this many times.
CONFLICT_RETRIES = 2
NEW_CONVERSATION_ETAG = "new-conversation"


class SupportBot(ActivityHandler):
    """Greets customers and hands each message to the dialog engine.

    Conversation state is read once at the start of a turn and written once, with the
    store's ETag, before the replies go out: if another instance changed the
    conversation meanwhile, the turn is recomputed on the fresh state instead of
    overwriting it, so no update is lost and no reply is sent twice.
    """

    def __init__(
        self,
        conversation_state: ConversationState,
        engine: DialogEngine,
        *,
        stream_interval_s: float = 1.0,
        handoff: HandoffDesk | None = None,
        trace_content: bool = False,
    ) -> None:
        self._conversation_state = conversation_state
        self.engine = engine
        self._stream_interval_s = stream_interval_s
        self.handoff = handoff
        # Whether a turn's spans may carry what the customer wrote (TRACE_CONTENT).
        self.trace_content = trace_content

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        for member in members_added:
            if member.id != bot_id:
                await turn_context.send_activity(MessageFactory.text(WELCOME, speak=WELCOME))

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        """One customer turn, traced (a root span per turn, the tools, model and store calls
        under it) and counted, with its conversation id on every log line it writes."""
        activity = turn_context.activity
        channel_id = str(activity.channel_id or "unknown")
        conversation_id = activity.conversation.id if activity.conversation else None
        token = CONVERSATION.set(conversation_id)
        started = time.perf_counter()
        try:
            with (
                content_policy(self.trace_content),
                span(
                    "turn", **{"aftercare.channel": channel_id, "aftercare.conversation": conversation_id}
                ) as current,
            ):
                set_content(current, "aftercare.text", activity.text or "")
                engine = await self._answer(turn_context)
                current.set_attribute("aftercare.engine", engine)
            telemetry.TURNS.labels(channel_id, engine).inc()
            telemetry.TURN_SECONDS.labels(channel_id, engine).observe(time.perf_counter() - started)
        finally:
            CONVERSATION.reset(token)

    async def _answer(self, turn_context: TurnContext) -> str:
        """Answers the message; says which engine did ("handoff" when a person has it)."""
        activity = turn_context.activity
        text = (activity.text or "").strip()
        value: dict[str, Any] | None = activity.value if isinstance(activity.value, dict) else None
        photos = photos_in(activity.attachments)
        if photos:
            # Pictures a customer pasted or attached (Teams): the dialog takes them as the
            # photos a complaint asks for; where each one is goes into the agent's case.
            value = {**(value or {}), "photos": photos}
        if not text and not value:
            await turn_context.send_activity("I didn't catch any text there. Could you type your question?")
            return "none"
        channel = channel_for(activity.channel_id)
        notice = redaction_notice(activity.channel_data)
        if notice:
            await turn_context.send_activity(MessageFactory.text(notice, speak=notice))
        if self.handoff is not None and await self._for_a_person(turn_context, text, channel):
            return "handoff"
        teams: TeamsStream | None = None
        spoken: SentenceStream | None = None
        if self.engine.streams and _is_teams_personal_chat(turn_context):
            teams = TeamsStream(turn_context, min_interval_s=self._stream_interval_s)
            await teams.start()
        elif self.engine.streams and channel.is_voice:
            spoken = SentenceStream(turn_context)
        elif not channel.is_voice:
            await turn_context.send_activity(typing())
        for attempt in range(CONFLICT_RETRIES + 1):
            cached = await self._read_state(turn_context, fresh=attempt > 0)
            if activity.id and cached.get(LAST_ACTIVITY_PROPERTY) == activity.id:
                # This message's turn was saved but its answer never went out (the process
                # stopped in between) and the channel runs it again: doing it twice could
                # repeat what it did, so the customer is asked instead.
                await turn_context.send_activity(MessageFactory.text(INTERRUPTED, speak=INTERRUPTED))
                return "none"
            state = DialogState.model_validate(cached.get(DIALOG_PROPERTY) or {})
            # A recomputed turn is not streamed again: its first try's text is already out.
            sink = (teams.on_text if teams else spoken.on_text if spoken else None) if attempt == 0 else None
            replies = await self.engine.respond(text, value, state, channel, on_text=sink)
            if self.handoff is not None:
                replies = replies + await self.handoff.after_turn(turn_context, cached, state, replies)
            cached[DIALOG_PROPERTY] = state.model_dump(mode="json")
            cached[LAST_ACTIVITY_PROPERTY] = activity.id
            try:
                await self._conversation_state.save_changes(turn_context)
                break
            except ConcurrencyConflict:
                if attempt == CONFLICT_RETRIES:
                    raise
                log.info("conversation %s changed meanwhile; recomputing the turn", activity.conversation.id)
        # A call listens for the shape of answer the last question asked for.
        expecting = expected_answer(state) if channel.is_voice else None
        await self._send(turn_context, replies, channel, teams, spoken, expecting)
        return replies[0].engine if replies else "none"

    async def on_event_activity(self, turn_context: TurnContext) -> None:
        if turn_context.activity.name == "handoff.status" and self.handoff is not None:
            await self.handoff.on_status(turn_context)

    async def _for_a_person(self, turn_context: TurnContext, text: str, channel: Channel) -> bool:
        """Gives the message to the handoff desk in a conversation that asked for a person;
        True when it was for the agent (or a rating) and the engine must not answer."""
        cached = await self._read_state(turn_context, fresh=False)
        if not cached.get(HANDOFF_PROPERTY):
            return False
        assert self.handoff is not None
        outcome = await self.handoff.before_turn(turn_context, text, cached)
        if not outcome.handled:
            return False
        for attempt in range(CONFLICT_RETRIES + 1):
            cached[LAST_ACTIVITY_PROPERTY] = turn_context.activity.id
            try:
                await self._conversation_state.save_changes(turn_context)
                break
            except ConcurrencyConflict:
                if attempt == CONFLICT_RETRIES:
                    raise
                cached = await self._read_state(turn_context, fresh=True)
                if outcome.replies:  # a rating was taken: the marker goes
                    cached.pop(HANDOFF_PROPERTY, None)
        for index, reply in enumerate(outcome.replies):
            await turn_context.send_activity(
                to_activity(reply, channel, expecting_input=index == len(outcome.replies) - 1)
            )
        return True

    async def _read_state(self, turn_context: TurnContext, *, fresh: bool) -> dict[str, Any]:
        """The conversation's stored state, read once for this turn (again when `fresh`).

        The dict is the one `save_changes` writes, with the store's e_tag in it. It is
        used directly rather than through a property accessor: BotState re-reads from the
        store whenever its cached dict is empty, so an accessor's default could land in a
        sibling's newer state and be written back over it with that state's valid e_tag.
        A conversation nobody has stored yet gets an e_tag that only an empty key accepts,
        so of two first turns running at once one creates it and the other is recomputed.
        """
        await self._conversation_state.load(turn_context, force=fresh)
        cached = self._conversation_state.get_cached_state(turn_context)
        if "e_tag" not in cached.state:
            cached.state["e_tag"] = NEW_CONVERSATION_ETAG
        state: dict[str, Any] = cached.state  # the live dict that save_changes writes
        return state

    async def _send(
        self,
        turn_context: TurnContext,
        replies: list[Reply],
        channel: Channel,
        teams: TeamsStream | None,
        spoken: SentenceStream | None,
        expecting: str | None = None,
    ) -> None:
        for index, reply in enumerate(replies):
            last = index == len(replies) - 1
            outgoing = to_activity(reply, channel, expecting_input=last)
            if last and expecting:
                data = dict(outgoing.channel_data or {})
                data["aftercare"] = {**data.get("aftercare", {}), "expecting": expecting}
                outgoing.channel_data = data
            if index == 0 and teams is not None:
                outgoing = teams.finish(outgoing)
            if index == 0 and spoken is not None:
                rest = spoken.remainder(reply.text)
                if rest is None:
                    continue  # every sentence of it has been spoken already
                outgoing.text = outgoing.speak = rest
            await turn_context.send_activity(outgoing)


def _is_teams_personal_chat(turn_context: TurnContext) -> bool:
    # Teams streams replies only in one-to-one chats.
    activity = turn_context.activity
    conversation_type = (
        getattr(activity.conversation, "conversation_type", None) if activity.conversation else None
    )
    return activity.channel_id == "msteams" and conversation_type == "personal"


def photos_in(attachments: list[Attachment] | None) -> list[str]:
    """Where the message's pictures are: their URLs (a name for an inline picture, whose
    bytes stay out of the conversation state)."""
    found = []
    for index, attachment in enumerate(attachments or [], start=1):
        if not str(attachment.content_type or "").startswith("image/"):
            continue
        url = str(attachment.content_url or "")
        found.append(url if url.startswith("https://") else str(attachment.name or f"picture {index}"))
    return found[:10]
