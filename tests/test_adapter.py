"""Turns of the app's own Direct Line run in-process: the replies reach the channel as
the JSON the Bot Connector endpoint would have received, in order, with its ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    Entity,
    Mention,
)
from botframework.connector.auth import BotFrameworkAuthenticationFactory

from bot.activity_json import activity_json
from bot.adapter import TURN_ERROR_REPLY, AftercareAdapter
from bot.replies import channel_for, to_activity, typing
from dialogs.turn import Reply


def _incoming(text: str) -> Activity:
    return Activity(
        type="message",
        id="conversation-1|0000003",
        text=text,
        channel_id="directline",
        service_url="http://127.0.0.1:1",  # nothing listens: a reply over HTTP would fail
        conversation=ConversationAccount(id="conversation-1"),
        from_property=ChannelAccount(id="customer", role="user"),
        recipient=ChannelAccount(id="aftercare-bot", name="Aftercare", role="bot"),
    )


class ChattyBot(ActivityHandler):
    def __init__(self) -> None:
        self.sent_ids: list[str] = []

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        if turn_context.activity.text == "fail":
            raise RuntimeError("internal detail that must not reach the customer")
        await turn_context.send_activity(typing())
        await turn_context.send_trace_activity("debug", value={"only": "for the Emulator"})
        responses = await turn_context.send_activities(
            [MessageFactory.text("one"), MessageFactory.text("two")]
        )
        self.sent_ids = [r.id for r in responses]


async def test_replies_go_to_the_local_channel_in_order_and_traces_do_not() -> None:
    delivered: list[dict[str, Any]] = []

    async def deliver(activity: dict[str, Any]) -> str:
        delivered.append(activity)
        return f"conversation-1|{len(delivered):07d}"

    adapter = AftercareAdapter(BotFrameworkAuthenticationFactory.create())
    bot = ChattyBot()
    await adapter.process_local_activity(_incoming("hello"), bot.on_turn, deliver)
    assert [(a["type"], a.get("text")) for a in delivered] == [
        ("typing", None),
        ("message", "one"),
        ("message", "two"),
    ]
    for activity in delivered:
        assert activity["conversation"] == {"id": "conversation-1"}
        assert activity["from"]["id"] == "aftercare-bot" and activity["recipient"]["id"] == "customer"
        # replyToId stays empty, as BotBuilder leaves it on Direct Line; the channel sets it.
    assert bot.sent_ids == ["conversation-1|0000002", "conversation-1|0000003"]


async def test_a_failed_local_turn_apologises_through_the_same_channel() -> None:
    delivered: list[dict[str, Any]] = []

    async def deliver(activity: dict[str, Any]) -> str:
        delivered.append(activity)
        return "id"

    adapter = AftercareAdapter(BotFrameworkAuthenticationFactory.create())
    await adapter.process_local_activity(_incoming("fail"), ChattyBot().on_turn, deliver)
    assert [a["text"] for a in delivered] == [TURN_ERROR_REPLY]


def test_activity_json_is_what_msrest_writes_for_every_shape_the_bot_sends() -> None:
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "#W1"}]}
    replies = [
        to_activity(
            Reply(text="Your order", speak="Your order", card=card),
            channel_for("directline"),
            expecting_input=True,
        ),
        to_activity(
            Reply(text="Return it?", suggested_actions=["Yes", "No"]),
            channel_for("webchat"),
            expecting_input=False,
        ),
        to_activity(Reply(text="On a call"), channel_for("telephony"), expecting_input=True),
        typing(),
        MessageFactory.text("Hi", speak="<speak>Hi</speak>"),
    ]
    stamped = MessageFactory.text("stamped")
    stamped.timestamp = datetime(2026, 12, 1, 20, 15, 3, 250000, tzinfo=UTC)
    stamped.entities = [Mention(mentioned=ChannelAccount(id="u"), text="<at>u</at>", type="mention")]
    stamped.channel_data = {"nested": [{"deep": True, "n": 1.5}], "account": ChannelAccount(id="x")}
    replies.append(stamped)
    replies.append(Activity(type=ActivityTypes.event, name="handoff.initiate", value={"transcript": []}))
    for activity in replies:
        activity.conversation = ConversationAccount(id="c")
        activity.from_property = ChannelAccount(id="bot", name="Aftercare", role="bot")
        activity.recipient = ChannelAccount(id="customer", role="user")
        assert activity_json(activity) == activity.serialize(), activity.type


def test_activity_json_leaves_what_it_does_not_know_to_msrest() -> None:
    odd = MessageFactory.text("odd")
    odd.entities = [Entity(type="thing")]
    odd.channel_data = {"when": {1, 2}}  # not JSON: msrest's own handling (and its error) apply
    try:
        expected: Any = odd.serialize()
    except Exception as exc:  # msrest decides; we only promise to do the same
        expected = type(exc)
    try:
        got: Any = activity_json(odd)
    except Exception as exc:
        got = type(exc)
    assert got == expected
