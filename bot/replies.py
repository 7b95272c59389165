"""Turns the dialog's channel-neutral `Reply` into Bot Framework activities."""

from __future__ import annotations

from botbuilder.core import CardFactory, MessageFactory
from botbuilder.schema import Activity, ActivityTypes, CardAction, InputHints, SuggestedActions

from dialogs.turn import Channel, Reply

# Bot Framework channel ids we treat as a voice call (Azure Communication Services
# telephony arrives as "telephony"; the app's own phone channel as "voice").
VOICE_CHANNELS = {"telephony", "voice"}


def channel_for(channel_id: str | None) -> Channel:
    if channel_id in VOICE_CHANNELS:
        return Channel(id="voice")
    return Channel(id=channel_id or "webchat")


def to_activity(reply: Reply, channel: Channel, *, expecting_input: bool) -> Activity:
    """One message activity: text, `speak`, an Adaptive Card where rendered, suggestions."""
    if reply.card is not None and channel.renders_cards:
        activity = MessageFactory.attachment(CardFactory.adaptive_card(reply.card), text=reply.text)
    else:
        activity = MessageFactory.text(reply.text)
    activity.speak = reply.speak or reply.text
    activity.input_hint = InputHints.expecting_input if expecting_input else InputHints.accepting_input
    if reply.suggested_actions and channel.renders_suggestions:
        activity.suggested_actions = SuggestedActions(
            actions=[CardAction(type="imBack", title=label, value=label) for label in reply.suggested_actions]
        )
    # Which engine answered travels with the message, so transcripts show it per turn.
    aftercare: dict[str, object] = {"engine": reply.engine, "handoff": reply.handoff_requested}
    if reply.sentiment is not None:
        aftercare["sentiment"] = reply.sentiment
    activity.channel_data = {"aftercare": aftercare}
    return activity


def typing() -> Activity:
    return Activity(type=ActivityTypes.typing)
