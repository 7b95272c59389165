"""SupportBot: the ActivityHandler every channel talks to."""

from __future__ import annotations

from botbuilder.core import ActivityHandler, ConversationState, MessageFactory, TurnContext
from botbuilder.schema import ChannelAccount

WELCOME = (
    "Hi, I'm Aftercare, the shop's support assistant. I can help with your orders, "
    "deliveries, returns, refunds and warranty questions. What can I do for you?"
)

# The property of conversation state that holds this bot's per-conversation record.
CONVERSATION_PROPERTY = "aftercare"


class SupportBot(ActivityHandler):
    """Greets customers and answers their messages.

    Conversation state is read once at the start of a turn and written once at its end,
    with the store's ETag, so two app instances never silently overwrite each other.
    The reply is a placeholder until the support dialog is wired in.
    """

    def __init__(self, conversation_state: ConversationState) -> None:
        self._conversation_state = conversation_state
        self._record = conversation_state.create_property(CONVERSATION_PROPERTY)

    async def on_turn(self, turn_context: TurnContext) -> None:
        await super().on_turn(turn_context)
        # Saved only after the replies went out: a failed turn leaves state as it was.
        await self._conversation_state.save_changes(turn_context)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        for member in members_added:
            if member.id != bot_id:
                await turn_context.send_activity(MessageFactory.text(WELCOME, speak=WELCOME))

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        record = await self._record.get(turn_context, dict)
        record["turns"] = int(record.get("turns", 0)) + 1
        await self._record.set(turn_context, record)
        text = (turn_context.activity.text or "").strip()
        if not text:
            reply = "I didn't catch any text there. Could you type your question?"
        else:
            reply = f"Thanks, I got your message: \u201c{text}\u201d. Order help is on its way."
        await turn_context.send_activity(MessageFactory.text(reply, speak=reply))
