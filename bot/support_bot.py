"""SupportBot: the ActivityHandler every channel talks to."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import ActivityHandler, ConversationState, MessageFactory, TurnContext
from botbuilder.schema import ChannelAccount

from bot.errors import ConcurrencyConflict
from bot.replies import channel_for, to_activity, typing
from dialogs.turn import DialogEngine, DialogState

log = logging.getLogger(__name__)

WELCOME = (
    "Hi, I'm Aftercare, the shop's support assistant. I can help with your orders, "
    "deliveries, returns, refunds and warranty questions. What can I do for you?"
)

# The property of conversation state that holds the dialog's record of the conversation.
DIALOG_PROPERTY = "dialog"
# A turn that loses an ETag race is recomputed on the fresh state this many times.
CONFLICT_RETRIES = 2


class SupportBot(ActivityHandler):
    """Greets customers and hands each message to the dialog engine.

    Conversation state is read once at the start of a turn and written once, with the
    store's ETag, before the replies go out: if another instance changed the
    conversation meanwhile, the turn is recomputed on the fresh state instead of
    overwriting it, so no update is lost and no reply is sent twice.
    """

    def __init__(self, conversation_state: ConversationState, engine: DialogEngine) -> None:
        self._conversation_state = conversation_state
        self._dialog = conversation_state.create_property(DIALOG_PROPERTY)
        self.engine = engine

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        for member in members_added:
            if member.id != bot_id:
                await turn_context.send_activity(MessageFactory.text(WELCOME, speak=WELCOME))

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        text = (activity.text or "").strip()
        value: dict[str, Any] | None = activity.value if isinstance(activity.value, dict) else None
        if not text and not value:
            await turn_context.send_activity("I didn't catch any text there. Could you type your question?")
            return
        channel = channel_for(activity.channel_id)
        if not channel.is_voice:
            await turn_context.send_activity(typing())
        for attempt in range(CONFLICT_RETRIES + 1):
            state = DialogState.model_validate(await self._dialog.get(turn_context, dict))
            replies = await self.engine.respond(text, value, state, channel)
            await self._dialog.set(turn_context, state.model_dump(mode="json"))
            try:
                await self._conversation_state.save_changes(turn_context)
                break
            except ConcurrencyConflict:
                if attempt == CONFLICT_RETRIES:
                    raise
                log.info("conversation %s changed meanwhile; recomputing the turn", activity.conversation.id)
                await self._conversation_state.load(turn_context, force=True)
        for index, reply in enumerate(replies):
            await turn_context.send_activity(
                to_activity(reply, channel, expecting_input=index == len(replies) - 1)
            )
