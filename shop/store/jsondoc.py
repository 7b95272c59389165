"""Documents to and from JSON text, for the stores and the state they keep.

Every turn writes the conversation state and its Direct Line activities as JSON, and the
state grows with the conversation, so this is on the hot path: orjson does it several
times faster than the standard library. It is held to what `json` accepts: dates and
dataclasses are refused (TypeError) rather than quietly turned into strings, so a value
that would not come back as it went in never reaches the store.
"""

from __future__ import annotations

from typing import Any

import orjson

_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps(doc: Any) -> str:
    """Compact JSON text; TypeError for anything that is not plain JSON."""
    return orjson.dumps(doc, option=_STRICT).decode()


# What orjson refuses that Python's own parser reads, by a cue in orjson's terse message,
# in words for the client that sent it.
_REFUSALS = (
    (
        "Integer exceeds 64-bit range",
        "it holds an integer outside 64 bits (from -9223372036854775808 to 18446744073709551615)",
    ),
    (
        "surrogates not allowed",
        "a string in it holds an unpaired surrogate such as \\ud800, which is not valid Unicode",
    ),
    ("Recursion limit reached", "its arrays and objects are nested more than 254 levels deep"),
)


def refusal(doc: Any) -> str | None:
    """Why `dumps` would refuse `doc`, as a sentence for whoever sent it; None when it can be
    written. Lets an endpoint refuse such a body with a 400 before anything is stored."""
    try:
        dumps(doc)
    except TypeError as exc:
        return next((why for cue, why in _REFUSALS if cue in str(exc)), f"it is not plain JSON ({exc})")
    return None


def loads(text: str | bytes) -> Any:
    """The document; ValueError (orjson.JSONDecodeError) for text that is not JSON."""
    return orjson.loads(text)


def copy(doc: Any) -> Any:
    """A deep copy of a plain-JSON document, proving it is one (TypeError otherwise)."""
    return orjson.loads(orjson.dumps(doc, option=_STRICT))
