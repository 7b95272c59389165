"""Product suggestions, and the gate that decides whether a conversation may get any.

Only at a natural end of a conversation (the customer thanks the bot or says goodbye),
and only when every condition holds: recent sentiment positive, no open complaint, no
handoff, no refused or failed action, not declined before, not suggested already, and a
verified customer (the suggestions come from what they bought). Then at most three
available products nearest in embedding space to their purchases, never one they own.
Every decision, open or closed, is written into the transcript with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from statistics import fmean

from dialogs.catalog import ProductHit, ProductIndex
from dialogs.turn import Channel, DialogState, Reply
from dialogs.wording import dollars, join_words
from shop.errors import AftercareError
from shop.retail import RetailService

# The customer closing the conversation: thanks, goodbye, that's all; not a question.
_NATURAL_END = re.compile(
    r"\b(thanks?|thank you|thx|cheers|bye|goodbye|that'?s all|that is all|all good|sorted|"
    r"that helps|that helped|have a (good|great|nice) (day|one|evening))\b",
    re.I,
)
_DECLINED = re.compile(r"^\s*(no( thanks?| thank you)?|not (now|interested)|nope|no need)\b", re.I)
RECENT = 3
# A message at or below this anywhere in the conversation means a problem was raised.
PROBLEM = -0.3
# The last few messages: none below the floor, averaging at least the minimum, and the
# closing one clearly positive.
FLOOR = -0.25
MIN_MEAN = 0.1
MIN_CLOSING = 0.3
# A closing is short: "thanks, bye", not a long complaint that says "thank you" midway.
MAX_CLOSING_WORDS = 12
MAX_SUGGESTIONS = 3
# A message the engine did not understand this few turns before the closing: unresolved.
UNRESOLVED_TURNS = 2


def _unresolved(state: DialogState) -> bool:
    """A message the engine did not understand, a turn or two before the closing, that was
    not simply friendly ("love the jacket btw" is fine; "I just want an answer" is not)."""
    turn = state.not_understood_turn
    if not turn or state.turn - turn > UNRESOLVED_TURNS:
        return False
    said = [e for e in state.transcript if e.role == "user" and e.turn == turn]
    return any(entry.sentiment is None or entry.sentiment < MIN_CLOSING for entry in said)


def is_natural_end(text: str) -> bool:
    return (
        bool(_NATURAL_END.search(text))
        and "?" not in text
        and not _DECLINED.match(text)
        and len(text.split()) <= MAX_CLOSING_WORDS
    )


def declines(text: str) -> bool:
    return bool(_DECLINED.match(text))


@dataclass(frozen=True)
class GateDecision:
    open: bool
    reason: str

    def note(self) -> str:
        return f"gate: {'open' if self.open else 'closed'}, {self.reason}"


def decide(state: DialogState, *, enabled: bool) -> GateDecision:
    """Whether this conversation, now at a natural end, may get suggestions."""
    if not enabled:
        return GateDecision(False, "recommendations are off (RECOMMENDATIONS=off)")
    recent = state.sentiment[-RECENT:]
    mean = fmean(recent) if recent else 0.0
    worst = min(state.sentiment, default=0.0)
    failed = [a.tool for a in state.actions if not a.ok]
    checks = (
        (state.suggestions_declined, "the customer declined suggestions before"),
        (state.suggested, "products were already suggested in this conversation"),
        (state.handoff_requested, "a person was asked for in this conversation"),
        (state.open_complaint, "a complaint is open"),
        (bool(failed), f"a refused or failed action ({', '.join(failed)})"),
        (worst <= PROBLEM, f"a problem was raised in this conversation (sentiment {worst:+.2f})"),
        (_unresolved(state), "a recent request was not understood, so it was not resolved"),
        (
            not recent or mean < MIN_MEAN or min(recent) < FLOOR or recent[-1] < MIN_CLOSING,
            f"sentiment {mean:+.2f} over last {len(recent)} turns",
        ),
        (state.verified_user_id is None, "no purchase history (the customer is not verified)"),
    )
    for closed, reason in checks:
        if closed:
            return GateDecision(False, reason)
    return GateDecision(True, f"sentiment {mean:+.2f} over last {len(recent)} turns")


class Recommender:
    """At most three available products near what the customer bought, never one they own."""

    def __init__(self, retail: RetailService, products: ProductIndex) -> None:
        self._retail = retail
        self._products = products

    async def for_customer(self, user_id: str, k: int = MAX_SUGGESTIONS) -> list[ProductHit]:
        owned = await self.owned(user_id)
        return self._products.near(sorted(owned), k, exclude=owned)

    async def owned(self, user_id: str) -> set[str]:
        """Product ids of everything the customer ordered (cancelled orders aside)."""
        customer = await self._retail.get_user_details(user_id, acting_user_id=user_id)
        owned: set[str] = set()
        for order_id in customer["orders"]:
            try:
                order = await self._retail.get_order_details(order_id, acting_user_id=user_id)
            except AftercareError:
                continue
            if order["status"] != "cancelled":
                owned.update(item["product_id"] for item in order["items"])
        return owned


def suggestion_reply(hits: list[ProductHit], channel: Channel) -> Reply:
    names = [hit.name for hit in hits]
    spoken = f"Before you go: based on your orders, you might like the {join_words(names)}."
    lines = [
        f"- **{hit.name}**: {_in_stock(hit)}, from {dollars(hit.price_from)}"
        for hit in hits
        if hit.price_from is not None
    ]
    intro = "Glad I could help! Based on what you've ordered before, you might also like:"
    # Where the card shows the products, the text does not list them a second time.
    text = intro if channel.renders_cards else intro + "\n" + "\n".join(lines)
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [
            {"type": "TextBlock", "text": "You might also like", "weight": "Bolder", "size": "Medium"},
            *[
                {
                    "type": "ColumnSet",
                    "columns": [
                        {
                            "type": "Column",
                            "width": "stretch",
                            "items": [
                                {"type": "TextBlock", "text": hit.name, "weight": "Bolder", "wrap": True},
                                {
                                    "type": "TextBlock",
                                    "text": _in_stock(hit),
                                    "isSubtle": True,
                                    "spacing": "None",
                                },
                            ],
                        },
                        {
                            "type": "Column",
                            "width": "auto",
                            "items": [{"type": "TextBlock", "text": f"from {dollars(hit.price_from)}"}],
                        },
                    ],
                }
                for hit in hits
                if hit.price_from is not None
            ],
        ],
    }
    return Reply(
        text=text,
        speak=spoken,
        card=card if channel.renders_cards else None,
        suggested_actions=[f"Tell me about the {hits[0].name}", "No thanks"],
    )


def _in_stock(hit: ProductHit) -> str:
    return f"{hit.in_stock} option{'s' if hit.in_stock != 1 else ''} in stock"
