"""Shaping replies for a channel: Adaptive Cards for order details and confirmations
where cards render, suggested actions where they show, and a plain speakable sentence
for every reply (the voice channel speaks `speak`, never the markdown)."""

from __future__ import annotations

import re
from typing import Any

from dialogs.turn import Channel, EngineName, PendingAction, Reply
from dialogs.wording import describe_address, dollars, item_options, status_words
from shop.models import Order

_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


def speakable(text: str) -> str:
    """The text as sentences a voice can read: no markdown, ids spelled out."""
    spoken = re.sub(r"[*_`]", "", text)
    spoken = re.sub(r"#?W(\d{7})\b", lambda m: "W " + " ".join(m.group(1)), spoken)
    # Long numbers (tracking numbers) read digit by digit, in groups of four.
    spoken = re.sub(
        r"\b\d{9,}\b",
        lambda m: ", ".join(" ".join(m.group(0)[i : i + 4]) for i in range(0, len(m.group(0)), 4)),
        spoken,
    )
    lines = [line.strip(" -•") for line in spoken.splitlines() if line.strip(" -•")]
    sentences = [line if line.endswith((".", "?", "!", ":")) else line + "." for line in lines]
    return " ".join(sentences).replace(":.", ":")


def finalize(replies: list[Reply], channel: Channel, engine: EngineName) -> list[Reply]:
    """Drops what the channel cannot show and fills `speak`; marks the engine."""
    shaped = []
    for reply in replies:
        shaped.append(
            reply.model_copy(
                update={
                    "speak": reply.speak or speakable(reply.text),
                    "card": reply.card if channel.renders_cards else None,
                    "suggested_actions": reply.suggested_actions if channel.renders_suggestions else [],
                    "engine": engine,
                }
            )
        )
    return shaped


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": _CARD_SCHEMA, "version": "1.5", "body": body}
    if actions:
        card["actions"] = actions
    return card


def order_card(order: Order, tracking: list[str] | None = None) -> dict[str, Any]:
    """An order at a glance: status, items with options and prices, address, tracking."""
    items = [
        {
            "type": "ColumnSet",
            "columns": [
                {
                    "type": "Column",
                    "width": "stretch",
                    "items": [
                        {
                            "type": "TextBlock",
                            "text": str(item.get("name", "")),
                            "weight": "Bolder",
                            "wrap": True,
                        },
                        {
                            "type": "TextBlock",
                            "text": item_options(item),
                            "isSubtle": True,
                            "wrap": True,
                            "spacing": "None",
                        },
                    ],
                },
                {
                    "type": "Column",
                    "width": "auto",
                    "items": [{"type": "TextBlock", "text": dollars(item.get("price", 0))}],
                },
            ],
        }
        for item in order.get("items", [])
    ]
    facts = [
        {"title": "Status", "value": status_words(str(order.get("status", "")))},
        {"title": "Ship to", "value": describe_address(order.get("address") or {})},
    ]
    if tracking:
        facts.append({"title": "Tracking", "value": ", ".join(tracking)})
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": f"Order {order.get('order_id', '')}",
            "size": "Medium",
            "weight": "Bolder",
        },
        {"type": "FactSet", "facts": facts},
        *items,
    ]
    return _card(body)


def confirm_card(pending: PendingAction) -> dict[str, Any]:
    """Yes / No buttons tied to this proposal's id. The summary itself is the reply's
    text, which every channel shows, so the card does not repeat it."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": "Shall I go ahead?", "weight": "Bolder", "wrap": True},
    ]
    actions = [
        {
            "type": "Action.Submit",
            "title": "Yes, go ahead",
            "data": {"action": "confirm", "pending_id": pending.id},
        },
        {"type": "Action.Submit", "title": "No", "data": {"action": "decline", "pending_id": pending.id}},
    ]
    return _card(body, actions)


def tracking_numbers(order: Order) -> list[str]:
    return [str(t) for f in order.get("fulfillments", []) for t in f.get("tracking_id", [])]
