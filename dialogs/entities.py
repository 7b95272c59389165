"""Entities in a customer's message, from the text alone: order ids (typed or spoken),
emails, zip codes, names, postal addresses and cancellation reasons.

Voice customers arrive through speech-to-text, so digits may come as words ("W one two
three ..., double seven"); `spoken_digits` folds those back before matching. Matching
against the customer's own data (items, payment methods, variants) is in
`dialogs.matching`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

_DIGIT_WORDS = MappingProxyType(
    {
        "zero": "0",
        "oh": "0",
        "o": "0",
        "one": "1",
        "two": "2",
        "to": "2",
        "too": "2",
        "three": "3",
        "four": "4",
        "for": "4",
        "five": "5",
        "six": "6",
        "seven": "7",
        "eight": "8",
        "nine": "9",
    }
)
_W_WORDS = re.compile(r"\b(double[\s-]?(u|you)|dub(ya)?|w)\b", re.IGNORECASE)
_ORDER_TOKEN = re.compile(r"^#?w(\d*)$", re.IGNORECASE)
# Starts only where a run of address characters starts, with RFC 5321's lengths: a long
# run with no "@" is then one failed try, not one per character (quadratic on a 20 KB
# "word", which held the event loop for seconds).
EMAIL_PATTERN = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(\.[\w-]{1,63}){1,8}")
_ZIP = re.compile(r"(?<![\d#])\d{5}(?!\d)")
# fmt: off
_STATES = frozenset([
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY"
])
# fmt: on
# Words that sit around a name in "hi, my name is Noah Brown and my zip is 80279".
# fmt: off
_NAME_FILLER = frozenset([
    "hi", "hello", "hey", "my", "name", "is", "i'm", "im", "i", "am", "this", "it's", "its", "the",
    "and", "zip", "code", "postal", "postcode", "zipcode", "here", "with", "at", "in", "from", "of",
    "live", "it", "verify", "me", "please", "thanks", "yes", "sure", "ok", "okay", "call", "called",
    "first", "last", "so", "um", "uh", "well", "name's"
])
# fmt: on
_MISTAKE = re.compile(r"mistake|accident|wrong|didn'?t mean|by error|twice|duplicate|not intended", re.I)
_NOT_NEEDED = re.compile(
    r"no longer need|don'?t need|do not need|not needed|changed my mind|change of mind|"
    r"don'?t want|do not want|no longer want|found (it )?(a )?cheaper|not necessary|no need",
    re.I,
)


def normalize_order_id(order_id: str) -> str:
    """'W1234567', 'w 123 4567', '#W1234567' -> '#W1234567' (others unchanged but stripped)."""
    compact = re.sub(r"[\s-]", "", order_id.strip())
    match = re.fullmatch(r"#?[wW](\d{7})", compact)
    return f"#W{match.group(1)}" if match else compact


def spoken_digits(text: str) -> str:
    """Folds digit words into digits: 'eight oh two seven nine' -> '8 0 2 7 9',
    'double seven' -> '7 7'. Single letters like 'o' only count between digits."""
    tokens = re.findall(r"[\w#@.'+-]+", text)
    out: list[str] = []
    repeat = 1
    for index, token in enumerate(tokens):
        lower = token.lower()
        if (
            lower in {"double", "triple"}
            and index + 1 < len(tokens)
            and tokens[index + 1].lower() in _DIGIT_WORDS
        ):
            repeat = 2 if lower == "double" else 3
            continue
        digit = _DIGIT_WORDS.get(lower)
        if digit is not None and lower in {"o", "oh", "to", "too", "for"} and not _near_digit(tokens, index):
            digit = None
        if digit is None:
            out.append(token)
        else:
            out.extend([digit] * repeat)
        repeat = 1
    return " ".join(out)


def _near_digit(tokens: list[str], index: int) -> bool:
    """True when a neighbour is a digit or an unambiguous digit word ('two oh five')."""

    def is_digitlike(token: str) -> bool:
        lower = token.lower()
        return lower.isdigit() or (lower in _DIGIT_WORDS and lower not in {"o", "oh", "to", "too", "for"})

    return any(0 <= j < len(tokens) and is_digitlike(tokens[j]) for j in (index - 1, index + 1))


def order_ids(text: str, *, allow_bare: bool = False) -> list[str]:
    """Order ids in the text, normalised to '#W1234567', in order of appearance.

    `allow_bare` also accepts seven digits with no W, for when the last question was
    "which order?" (customers often drop the letter).
    """
    folded = _W_WORDS.sub(" W ", spoken_digits(text))
    tokens = re.findall(r"#?[A-Za-z]+\d*|\d+", folded)
    found: list[str] = []
    index = 0
    while index < len(tokens):
        match = _ORDER_TOKEN.match(tokens[index])
        bare = allow_bare and tokens[index].isdigit()
        if match or bare:
            digits = match.group(1) if match else tokens[index]
            index += 1
            while len(digits) < 7 and index < len(tokens) and tokens[index].isdigit():
                digits += tokens[index]
                index += 1
            if len(digits) == 7:
                found.append(f"#W{digits}")
            continue
        index += 1
    return list(dict.fromkeys(found))


def emails(text: str) -> list[str]:
    # Speech-to-text writes "noah dot brown at example dot com"; fold that first.
    spoken = re.sub(r"\s+at\s+(?=[\w-]+\s+dot\s+)", "@", text, flags=re.I)
    spoken = re.sub(r"\s+dot\s+", ".", spoken, flags=re.I) if "@" in spoken else text
    return [m.group(0).rstrip(".").lower() for m in EMAIL_PATTERN.finditer(spoken)]


def zip_codes(text: str) -> list[str]:
    without_ids = re.sub(r"#?[wW]\s?\d{7}", " ", text)
    found = _ZIP.findall(without_ids)
    if not found:
        found = [m.replace(" ", "") for m in re.findall(r"(?<!\d)(?:\d ){4}\d(?!\d)", spoken_digits(text))]
    return found


@dataclass(frozen=True)
class PersonName:
    first: str
    last: str


def person_name(text: str) -> PersonName | None:
    """A first and last name in a message: two or three capitalised words in a row
    ("Hi, I'm Noah Brown, zip 80279"), or, in a short all-lowercase message (speech,
    quick typing), the two or three words left once the filler is gone ("noah brown")."""
    tokens = re.findall(r"[A-Za-z][A-Za-z'-]*", EMAIL_PATTERN.sub(" ", text))
    runs: list[list[str]] = [[]]
    for token in tokens:
        if token[0].isupper() and token.lower() not in _NAME_FILLER and token.lower() not in _DIGIT_WORDS:
            runs[-1].append(token)
        elif runs[-1]:
            runs.append([])
    names = [run for run in runs if 2 <= len(run) <= 3]
    if len(names) == 1:
        return PersonName(first=names[0][0], last=names[0][-1])
    if any(t[0].isupper() for t in tokens if t.lower() not in _NAME_FILLER):
        return None
    words = [t for t in tokens if t.lower() not in _NAME_FILLER and t.lower() not in _DIGIT_WORDS]
    # The longer the message, the likelier its leftover words are a request, not a name;
    # a zip code said digit by digit ("seven five two one five") is not more words.
    spoken = [t for t in tokens if t.lower() not in _DIGIT_WORDS]
    if not (len(words) == 2 and len(spoken) <= 10) and not (len(words) == 3 and len(spoken) <= 6):
        return None
    return PersonName(first=words[0].capitalize(), last=words[-1].capitalize())


def cancel_reason(text: str) -> str | None:
    """'ordered by mistake' or 'no longer needed' when the text says so."""
    if _MISTAKE.search(text):
        return "ordered by mistake"
    if _NOT_NEEDED.search(text):
        return "no longer needed"
    return None


def postal_address(text: str) -> dict[str, str] | None:
    """A US address written on one line or several: 'street, [unit,] city, ST zip[, country]'.

    Returns the six fields of the dataset's address (country defaults to USA), or None
    when the street, city, state or zip cannot be told apart.
    """
    body = re.sub(r"^.*?(?=\d+\s+\w)", "", text.strip(), count=1, flags=re.S)
    parts = [p.strip(" .") for p in re.split(r"[,\n;]+", body) if p.strip(" .")]
    country = "USA"
    if parts and parts[-1].lower() in {"usa", "us", "united states", "united states of america", "u.s.a"}:
        parts.pop()
    if len(parts) < 2:
        return None
    tail = parts.pop()
    match = re.fullmatch(r"(?:(?P<city>.+?)\s+)?(?P<state>[A-Za-z]{2})\s+(?P<zip>\d{5})(?:-\d{4})?", tail)
    if not match or match.group("state").upper() not in _STATES:
        return None
    city = match.group("city") or (parts.pop() if len(parts) >= 2 else "")
    if not city or not parts or not re.match(r"\d+\s+\S", parts[0]):
        return None
    return {
        "address1": parts[0],
        "address2": ", ".join(parts[1:]),
        "city": city.strip().title() if city.islower() else city.strip(),
        "state": match.group("state").upper(),
        "country": country,
        "zip": match.group("zip"),
    }
