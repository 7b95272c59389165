"""SupportBot: the ActivityHandler every channel talks to."""

from __future__ import annotations

from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.schema import ChannelAccount

WELCOME = (
    "Hi, I'm Aftercare, the shop's support assistant. I can help with your orders, "
    "deliveries, returns, refunds and warranty questions. What can I do for you?"
)


class SupportBot(ActivityHandler):
    """Greets customers and answers their messages.

    The reply is a placeholder until the support dialog is wired in; the channel and
    adapter plumbing around it is the real thing.
    """

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        for member in members_added:
            if member.id != bot_id:
                await turn_context.send_activity(MessageFactory.text(WELCOME, speak=WELCOME))

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        text = (turn_context.activity.text or "").strip()
        if not text:
            reply = "I didn't catch any text there. Could you type your question?"
        else:
            reply = f"Thanks, I got your message: \u201c{text}\u201d. Order help is on its way."
        await turn_context.send_activity(MessageFactory.text(reply, speak=reply))
