"""Agent (and handoff) messages into the customer's conversation, on any channel.

The app's own Direct Line conversations take the message straight into their log (the
customer's Web Chat shows it at once, on every instance). Teams and the other Azure Bot
Service channels get a proactive message through the adapter, from the conversation
reference stored when the customer asked for a person: the same path a reply takes.
"""

from __future__ import annotations

import logging

from botbuilder.core import BotAdapter, MessageFactory, TurnContext
from botbuilder.schema import (
    Activity,
    CardAction,
    ChannelAccount,
    ConversationReference,
    SuggestedActions,
)

from bot.activity_json import activity_json
from bot.channels.directline import DirectLineService
from bot.channels.voice import CHANNEL_ID as VOICE_CHANNEL_ID
from bot.channels.voice import VoiceChannel
from bot.handoff.records import HandoffRecord

log = logging.getLogger(__name__)


class ChannelDelivery:
    def __init__(
        self,
        adapter: BotAdapter,
        directline: DirectLineService,
        bot_app_id: str,
        *,
        phone: VoiceChannel | None = None,
    ) -> None:
        self._adapter = adapter
        self._directline = directline
        self._bot_app_id = bot_app_id
        self._phone = phone

    async def __call__(
        self,
        record: HandoffRecord,
        text: str,
        *,
        sender: str | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        activity = _message(text, sender, suggestions)
        if record.channel_id == VOICE_CHANNEL_ID and self._phone is not None:
            # Spoken on the call if the caller is still on the line; a call has no later.
            if not await self._phone.speak_into(record.conversation_id, text):
                log.info(
                    "conversation %s: the caller hung up before a message reached them",
                    record.conversation_id,
                )
            return
        if record.channel_id == "directline":
            conversation = await self._directline.conversations.get(record.conversation_id)
            if conversation is not None:  # one of this app's own conversations
                await self._directline.accept_from_bot(conversation, activity_json(activity))
                return
        reference = ConversationReference().deserialize(record.reference)

        async def send(turn_context: TurnContext) -> None:
            await turn_context.send_activity(activity)

        await self._adapter.continue_conversation(reference, send, self._bot_app_id)


def _message(text: str, sender: str | None, suggestions: list[str] | None) -> Activity:
    activity = MessageFactory.text(text)
    activity.speak = text
    if sender:
        # Shown as the agent's name where the channel shows one; still the bot's account.
        activity.from_property = ChannelAccount(name=f"{sender} (support team)")
        activity.channel_data = {"aftercare": {"agent": sender}}
    if suggestions:
        activity.suggested_actions = SuggestedActions(
            actions=[CardAction(type="imBack", title=label, value=label) for label in suggestions]
        )
    return activity
