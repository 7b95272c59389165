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


def loads(text: str | bytes) -> Any:
    """The document; ValueError (orjson.JSONDecodeError) for text that is not JSON."""
    return orjson.loads(text)


def copy(doc: Any) -> Any:
    """A deep copy of a plain-JSON document, proving it is one (TypeError otherwise)."""
    return orjson.loads(orjson.dumps(doc, option=_STRICT))
