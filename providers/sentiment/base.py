"""What sentiment is to the dialogs: one score per customer message, from -1 (angry) to 1
(delighted), with a label. The dialogs keep the scores and their trend in the
conversation's state; the recommendation gate and the offer of a person read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Label = Literal["negative", "neutral", "positive"]
# Scores within this distance of zero are neutral ("where is my order?").
NEUTRAL_BAND = 0.05


def label_for(value: float) -> Label:
    if value >= NEUTRAL_BAND:
        return "positive"
    if value <= -NEUTRAL_BAND:
        return "negative"
    return "neutral"


@dataclass(frozen=True)
class SentimentScore:
    value: float
    label: Label
    source: str  # which provider scored it, for the transcript

    @classmethod
    def of(cls, value: float, source: str) -> SentimentScore:
        clipped = max(-1.0, min(1.0, value))
        return cls(round(clipped, 3), label_for(clipped), source)


class Sentiment(Protocol):
    @property
    def name(self) -> str: ...

    async def score(self, text: str, *, context: Sequence[str] = ()) -> SentimentScore:
        """The customer's sentiment in `text`; `context` is what they said before it."""
        ...

    async def aclose(self) -> None: ...
