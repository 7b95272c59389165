"""The embedded sentiment scorer: VADER (`vaderSentiment`), with the shop's own rules on top.

VADER reads words, so it takes "oh great, another delay. just perfect." for delight and
"thanks, super useful" after a lost parcel for a happy customer. A support bot must not:
a suggestion to buy more, sent to someone being sarcastic about a late parcel, is the
worst reply it can give. So:
- praise in the words sarcasm uses ("thanks for nothing", "just perfect") is negative;
- praise that is sincere on its own ("so helpful", "amazing") is negative when this
  message or an earlier one names a problem (a delay, a missing or broken item, "again",
  "still pending");
- a message naming a problem counts as negative whatever its words of politeness;
- everyday phrases VADER misreads for their "no" ("no rush", "no worries") are not.
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
    r"\b(delay(ed|s)?|late|lost|missing|pending|stuck|forever|weeks? ago|"
    r"never (arrived|came|got|showed|shipped)|not (arrived|received|working|work|shipped)|"
    r"(hasn'?t|has not|haven'?t|didn'?t|did not|still not|never)( even| yet)? "
    r"(left|shipped|arrived|come|moved|been)|"
    r"ever (going to|gonna) (ship|arrive|come|get here)|(i was|we were|i'?ve been) (told|promised)|"
    r"straight answer|trying to be difficult|hope (this|it) gets sorted|"
    r"nothing (has )?(shipped|arrived|happened|moved)|"
    r"broken|broke|damaged?|dent(ed|s)?|crack(ed|s)?|scratch(ed|es)?|crush(ed)?|shatter(ed)?|leak(ing|s|ed)?|"
    r"smash(ed)?|torn|ripped|defective|faulty|wrong (item|size|colou?r|order|one)|"
    r"refund(ed)? yet|charged (me )?twice|overcharged|"
    r"still (waiting|nothing|no|not|haven'?t|hasn'?t|pending|stuck)|again\b|nobody|no one|waste of|"
    r"third time|second time|useless|ridiculous|unacceptable|scam|rip[- ]?off|fed up|sick of|tired of|"
    r"end of my rope|disappoint\w*|frustrat\w*|annoy\w*|upset|angry|furious)",
    re.I,
)
# Praise that is sarcasm whatever came before. The trailing lookahead (not \b) lets a
# phrase ending in a full stop match before a space or the end of the message.
_SARCASM = re.compile(
    r"\b(thanks for nothing|yeah,? right|sure,? whatever|love that for me|just great|just perfect|"
    r"oh,? great|oh,? wonderful|oh,? good|oh,? perfect|oh,? nice|how lovely|great packaging)(?=\W|$)",
    re.I,
)
# Praise that is sincere on its own but sarcasm after a problem ("thanks, super useful"
# once the parcel is lost), so it is read with what the customer said before.
_PRAISE_AFTER_TROUBLE = re.compile(
    r"\b(so helpful|super (useful|helpful)|very helpful|thanks a lot|exactly what I wanted to hear|"
    r"world class|truly|amazing|fantastic|wonderful|brilliant|perfect|lovely|great job|well done|"
    r"nice one|love (waiting|how|it when))(?=\W|$)",
    re.I,
)
# Everyday phrases VADER reads as negative for their "no" or "mistake": they are fine.
_EASY_GOING = re.compile(
    r"\b(no (rush|worries|problem|probs|biggie|hurry|big deal|stress)|not in a (rush|hurry)|"
    r"by mistake|my mistake|no harm done)\b",
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
        return self.score_now(text, earlier_trouble=any(_TROUBLE.search(line) for line in context))

    def score_now(self, text: str, *, earlier_trouble: bool = False) -> SentimentScore:
        value = float(self._vader.polarity_scores(text)["compound"])
        trouble = _TROUBLE.search(text) is not None
        sarcastic = _SARCASM.search(text) is not None or (
            (trouble or earlier_trouble) and _PRAISE_AFTER_TROUBLE.search(text) is not None
        )
        if sarcastic and (trouble or value > 0):
            # Praise with a problem, or praise in the words sarcasm uses: not delight.
            value = min(value, _SOFT_NEGATIVE) if value > 0 else value - 0.3
        elif trouble and value > -0.2:
            # Polite words around a problem: the problem is what the customer feels.
            value = min(value, -0.3)
        elif _EASY_GOING.search(text) and value < 0.3:
            value = max(value, 0.3)
        return SentimentScore.of(value, self.name)

    async def aclose(self) -> None:
        return None
