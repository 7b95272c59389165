"""The engine the bot talks to: the dialog engine (GPT or offline) with the customer's
sentiment around it.

Every customer message is scored (`providers.sentiment`), the score kept in the state with
its trend and written on the turn's first reply. Sustained negative sentiment offers a
person. At a natural end of the conversation the suggestion gate decides, with a reason
that goes into the transcript, whether up to three products may be suggested.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dialogs.suggestions import Recommender, decide, declines, is_natural_end, suggestion_reply
from dialogs.turn import Channel, DialogEngine, DialogState, EngineName, Reply, TextSink
from providers.sentiment import Sentiment
from shop import telemetry
from shop.errors import AftercareError

log = logging.getLogger(__name__)

# Scores at or below this, this many messages in a row, are sustained frustration.
UNHAPPY = -0.3
UNHAPPY_RUN = 3
MAX_SCORES = 50
_OFFER = (
    "I'm sorry this has been frustrating. Would you like me to pass you to a person from "
    "our support team? They'll see our conversation so far."
)


class SupportEngine:
    def __init__(
        self,
        inner: DialogEngine,
        sentiment: Sentiment,
        recommender: Recommender | None,
        *,
        recommendations: bool = True,
    ) -> None:
        self.inner = inner
        self._sentiment = sentiment
        self._recommender = recommender
        self._recommendations = recommendations and recommender is not None

    @property
    def name(self) -> EngineName:
        return self.inner.name

    @property
    def streams(self) -> bool:
        return self.inner.streams

    async def respond(
        self,
        text: str,
        value: dict[str, Any] | None,
        state: DialogState,
        channel: Channel,
        on_text: TextSink | None = None,
    ) -> list[Reply]:
        if state.suggested and declines(text):
            state.suggestions_declined = True
        earlier = [entry.text for entry in state.spoken() if entry.role == "user"][-4:]
        scoring = asyncio.ensure_future(self._score(text, earlier)) if text else None
        replies = await self.inner.respond(text, value, state, channel, on_text=on_text)
        score = await scoring if scoring is not None else None
        if score is not None:
            state.sentiment.append(score)
            del state.sentiment[:-MAX_SCORES]
            self._mark_transcript(state, text, score)
            if replies:
                replies[0] = replies[0].model_copy(update={"sentiment": score})
        if self._frustrated(state):
            state.person_offered = True
            replies.append(Reply(text=_OFFER, suggested_actions=["Talk to a person", "No, carry on"]))
        elif text and is_natural_end(text) and not any(r.handoff_requested for r in replies):
            replies += await self._suggest(state, channel)
        return replies

    async def _score(self, text: str, earlier: list[str]) -> float | None:
        try:
            return (await self._sentiment.score(text, context=earlier)).value
        except AftercareError as exc:  # sentiment must never cost the customer an answer
            log.warning("sentiment scoring failed: %s", exc)
            return None

    @staticmethod
    def _mark_transcript(state: DialogState, text: str, score: float) -> None:
        for entry in reversed(state.transcript):
            if entry.role == "user" and entry.text == text and entry.sentiment is None:
                entry.sentiment = score
                return

    @staticmethod
    def _frustrated(state: DialogState) -> bool:
        recent = state.sentiment[-UNHAPPY_RUN:]
        return (
            len(recent) == UNHAPPY_RUN
            and all(score <= UNHAPPY for score in recent)
            and not state.person_offered
            and not state.handoff_requested
        )

    async def _suggest(self, state: DialogState, channel: Channel) -> list[Reply]:
        decision = decide(state, enabled=self._recommendations)
        if not decision.open or self._recommender is None or state.verified_user_id is None:
            state.record_note(decision.note())
            telemetry.RECOMMENDATIONS.labels("closed").inc()
            return []
        try:
            hits = await self._recommender.for_customer(state.verified_user_id)
        except AftercareError as exc:
            state.record_note(f"gate: open, {decision.reason}; no suggestions ({exc})")
            telemetry.RECOMMENDATIONS.labels("failed").inc()
            return []
        if not hits:
            state.record_note(f"gate: open, {decision.reason}; nothing available to suggest")
            telemetry.RECOMMENDATIONS.labels("nothing to suggest").inc()
            return []
        telemetry.RECOMMENDATIONS.labels("suggested").inc()
        state.suggested = True
        state.record_note(f"{decision.note()}; suggested {', '.join(h.product_id for h in hits)}")
        reply = suggestion_reply(hits, channel)
        state.record_bot([reply])
        return [reply]
