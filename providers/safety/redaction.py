"""Card numbers and bank details out of a customer's message, before it is stored, logged,
traced or sent to a model.

The shop's own policy documents tell customers that card numbers are removed
automatically; this is what removes them. A card number is 13 to 19 digits, with or
without spaces or dashes between groups, that passes the Luhn check (so order ids, phone
numbers and tracking numbers stay). A CVV or an expiry date is removed only where the
message says it is one ("cvv 123", "expires 04/27"); an IBAN only when its check digits
hold (ISO 13616 mod 97); a bank account number only next to the words that name it.

Written here rather than with a PII library: the libraries that do this well (Presidio)
bring an NLP model to download at run time, and the few patterns needed are small,
checked, and tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CARD_CANDIDATE = re.compile(r"(?<![\w#])(?:\d[ -]?){12,18}\d(?![\w])")
_CVV = re.compile(r"\b(cvv2?|cvc2?|csc|security code|card code)\b(\s*(is|:|=|-)?\s*)\d{3,4}\b", re.I)
_EXPIRY = re.compile(
    r"\b(exp(iry|iration|ires)?( date)?|valid (thru|through|until))\b(\s*(is|on|:|=|-)?\s*)"
    r"(0?[1-9]|1[0-2])\s*[/\-.]\s*(\d{4}|\d{2})\b",
    re.I,
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_ACCOUNT = re.compile(
    r"\b(account( number| no\.?| #)?|acct\.?( no\.?| #)?|routing( number)?|sort code)\b(\s*(is|:|=|-)?\s*)"
    r"[\d][\d -]{4,20}\d\b",
    re.I,
)

CARD = "[card number removed]"


@dataclass
class Redaction:
    text: str
    removed: list[str] = field(default_factory=list)  # what kinds were removed, in order

    @property
    def changed(self) -> bool:
        return bool(self.removed)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(char, 36)) for char in rearranged)
    return int(numeric) % 97 == 1


def redact(text: str) -> Redaction:
    """The text with card numbers, CVVs, expiry dates, IBANs and account numbers replaced."""
    result = Redaction(text)

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            result.removed.append("card number")
            return CARD
        return match.group(0)

    def iban(match: re.Match[str]) -> str:
        if iban_valid(match.group(0)):
            result.removed.append("bank account number")
            return "[bank account number removed]"
        return match.group(0)

    redacted = _CARD_CANDIDATE.sub(card, text)
    redacted = _CVV.sub(lambda m: _keep(m, 2, "security code", result), redacted)
    redacted = _EXPIRY.sub(lambda m: _keep(m, 5, "expiry date", result), redacted)
    redacted = _IBAN.sub(iban, redacted)
    redacted = _ACCOUNT.sub(lambda m: _keep(m, 5, "bank account number", result), redacted)
    result.text = redacted
    return result


def _keep(match: re.Match[str], label_groups: int, kind: str, result: Redaction) -> str:
    """Keeps the words that named the secret (group 1 up to the separator group) and
    replaces the secret itself."""
    result.removed.append(kind)
    prefix = match.group(0)[
        : match.start(label_groups) - match.start(0) + len(match.group(label_groups) or "")
    ]
    return f"{prefix}[{kind} removed]"
