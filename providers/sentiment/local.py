"""The embedded sentiment scorer: VADER (`vaderSentiment`), with the shop's own rules on top.

VADER reads words, so it takes "oh great, another delay. just perfect." for delight and
"thanks" after a complaint for a happy customer. A support bot must not: a suggestion to
buy more, sent to someone being sarcastic about a late parcel, is the worst reply it can
give. So a message that pairs praise with a sign that something went wrong (a delay, a
missing or broken item, "again", "still") counts as negative; so does one that says a
problem goes on ("still waiting", "nobody"), whatever its words of politeness.
VADER is pure Python and scores a short message in about 0.1 ms, so it runs on the event
loop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from providers.sentiment.base import SentimentScore

# Something went wrong with an order or the service.
_TROUBLE = re.compile(
    r"\b(delay(ed|s)?|late|lost|missing|never (arrived|came|got)|not (arrived|received|working|work)|"
    r"broken|damaged|defective|wrong (item|size|colou?r|order)|refund(ed)? yet|charged twice|"
    r"still (waiting|nothing|no|not|haven'?t|hasn'?t)|again\b|nobody|no one|waste of|third time|"
    r"second time|useless|ridiculous|unacceptable|scam|rip[- ]?off|fed up|sick of|tired of)",
    re.I,
)
# Praise said in a way that usually means the opposite.
_SARCASM = re.compile(
    r"\b(oh great|just great|just perfect|perfect\.|wonderful\.|brilliant\.|fantastic\.|"
    r"thanks for nothing|great job|well done|love (waiting|that|how)|how lovely|so helpful(, not)?|"
    r"yeah right|sure(, )?whatever|thanks a lot)\b",
    re.I,
)
_SOFT_NEGATIVE = -0.5


class LocalSentiment:
    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    @property
    def name(self) -> str:
        return "vader+rules (local)"

    async def score(self, text: str, *, context: Sequence[str] = ()) -> SentimentScore:
        return self.score_now(text)

    def score_now(self, text: str) -> SentimentScore:
        value = float(self._vader.polarity_scores(text)["compound"])
        trouble = _TROUBLE.search(text) is not None
        if _SARCASM.search(text) and trouble:
            value = min(value, _SOFT_NEGATIVE) if value > 0 else value - 0.3
        elif trouble and value > -0.2:
            # Polite words around a problem: the problem is what the customer feels.
            value = min(value, -0.3)
        return SentimentScore.of(value, self.name)

    async def aclose(self) -> None:
        return None
