"""Answers to a question that offered a few options, in the customer's own words.

"Should I change the address of a pending order, or the default address on your
account?" is answered "the first one", "the address", "yes the order", "not the order,
my account"; "you no longer need it, or you ordered it by mistake?" is answered "by
mistake". The question keeps its options in `FlowState.choices` (label, value, words);
`pick` reads an answer against them: by position ("the first", "the latter", "2"), or by
words that point at one option and not the others, leaving out what the customer says
they do not mean ("not the order"). A bare yes or ok picks nothing (`AGREEMENT`): the
engine asks again with the options spelled out, as buttons where the channel has them.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final

from dialogs.tools.gate import is_explicit_yes
from dialogs.turn import Choice


class _Agreement(Enum):
    AGREEMENT = "agreement"


# A "yes" or "ok" that says which option it agrees to: none.
AGREEMENT: Final = _Agreement.AGREEMENT

_ORDINALS = (
    (re.compile(r"\b(first|1st|former|top|upper)\b"), 0),
    (re.compile(r"\b(second|2nd)\b"), 1),
    (re.compile(r"\b(third|3rd)\b"), 2),
    (re.compile(r"\b(fourth|4th)\b"), 3),
    (re.compile(r"\b(fifth|5th)\b"), 4),
    (re.compile(r"\b(sixth|6th)\b"), 5),
    (re.compile(r"\b(last|latter|bottom|lower)\b"), -1),
)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
# "2", "option 2", "number two", "#1": a position, when the message is only that.
_NUMBERED = re.compile(r"^(?:(?:option|number|choice|no\.?)\s*|#)?(\d|one|two|three|four|five|six)$")
# Words that agree without choosing ("ok", "yes please"), and filler around a choice.
_AGREEING = frozenset({"ok", "okay", "k", "alright", "fine", "yes", "yeah", "yep", "sure", "please"})
# "not the order", "rather than the account": what the customer does not mean. Only
# these forms: options' own words often hold a negation ("no longer needed", "not
# needed", "didn't mean to").
_NEGATED = re.compile(r"\b(?:not (?:the|my|a|an|your)|rather than|instead of)\b[^,;]*", re.I)


def pick(text: str, choices: list[Choice]) -> Choice | _Agreement | None:
    """The option the answer picks, `AGREEMENT` for a bare yes/ok, or None when the
    answer picks none of them (it may still answer the question some other way)."""
    lower = " ".join(re.findall(r"[a-z0-9#.']+|[,;]", text.lower())).strip(" .,;")
    if not choices or not lower:
        return None
    if is_explicit_yes(lower) or all(word in _AGREEING or word in ",;" for word in lower.split()):
        return AGREEMENT
    words = " ".join(w for w in lower.split() if w not in _AGREEING)
    numbered = _NUMBERED.match(words.replace("the ", "").removesuffix(" one").strip())
    if numbered:
        raw = numbered.group(1)
        position = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        return choices[position - 1] if 1 <= position <= len(choices) else None
    negated = " ".join(match.group(0) for match in _NEGATED.finditer(words))
    meant = _NEGATED.sub(" ", words)
    chosen = _by_position(meant, choices) or _pointed_at(meant, choices)
    if chosen is not None:
        return chosen
    refused = _by_position(negated, choices) or _pointed_at(negated, choices)
    if refused is not None and len(choices) == 2:
        return choices[1 - choices.index(refused)]  # "not the order": the other one
    return None


def named(text: str, choices: list[Choice]) -> Choice | None:
    """The option a message names by its words alone, not by position: for a request
    said before the question was asked ("it came broken, I want my money back"), where
    "last" or "first" mean something else."""
    words = " ".join(re.findall(r"[a-z0-9#.']+|[,;]", text.lower()))
    return _pointed_at(_NEGATED.sub(" ", words), choices)


def _by_position(text: str, choices: list[Choice]) -> Choice | None:
    for pattern, position in _ORDINALS:
        if pattern.search(text) and -len(choices) <= position < len(choices):
            return choices[position]
    return None


def _pointed_at(text: str, choices: list[Choice]) -> Choice | None:
    """The one option whose words the text uses most, or None (no words, or a tie)."""
    if not text.strip():
        return None
    scores = [sum(1 for word in choice.words if _says(text, word)) for choice in choices]
    best = max(scores)
    if best == 0 or scores.count(best) > 1:
        return None
    return choices[scores.index(best)]


def _says(text: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase.lower())}(s|es)?\b", text) is not None


def spelled_out(choices: list[Choice]) -> str:
    """'“A pending order” or “My account address”' (or a list ending in 'or')."""
    quoted = [f"“{choice.label}”" for choice in choices]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
