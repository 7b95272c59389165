"""Hypothesis strategies for malformed HTTP input: JSON values of every shape, JSON text
that only lenient parsers accept, Bot Framework activities with wrong types in every
field, bodies that are not JSON at all, junk identifiers and forged tokens."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import jwt
from botbuilder.schema import Activity
from hypothesis import strategies as st

from bot.channels.tokens import DirectLineGrant

# ----- JSON values ------------------------------------------------------------------------

# Text of every Unicode category, lone surrogates included: `json.dumps` writes them as
# `\ud800` escapes, which is valid JSON text that parses back to an unpaired surrogate.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
short_text = st.text(max_size=12)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)

# What Python's `json` parser accepts beyond strict JSON, or what other JSON libraries
# cannot hold: integers past 64 bits, NaN and Infinity, unpaired surrogates.
edge_scalars = (
    st.integers(min_value=2**63, max_value=2**200)
    | st.integers(min_value=-(2**200), max_value=-(2**63) - 1)
    | st.sampled_from([float("nan"), float("inf"), float("-inf")])
    | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
    | any_text
)


def huge_text(min_repeat: int = 1_000, max_repeat: int = 40_000) -> st.SearchStrategy[str]:
    """Long strings (up to a few hundred KB) built by repetition: hypothesis would refuse
    to draw that much data directly.

    Each repeated unit ends in a space. Long runs of word characters without one are a
    known way to stall the bot (test_long_words_fuzz.py, which checks exactly that, with
    its own app): here they would block the app's loop for minutes and leave every later
    example of the module timing out, so the random fuzz keeps its words short."""
    return st.builds(
        lambda unit, n: (unit + " ") * n, st.text(min_size=1, max_size=7), st.integers(min_repeat, max_repeat)
    )


json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(short_text, children, max_size=4),
    max_leaves=12,
)
junk_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars | edge_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
# Values of Python types `json.dumps` can write, drawn by type (from_type), for fields
# that expect something else.
typed_values = st.from_type(dict[str, list[int | float | str | None]]) | st.from_type(
    list[dict[str, bool | int | str]]
)


def dumps(value: Any) -> bytes:
    """JSON text as Python writes it (NaN, Infinity and big integers as they are)."""
    return json.dumps(value).encode()


# ----- bodies that are not plain JSON objects -----------------------------------------------


def _deep(n: int, opener: bytes, closer: bytes) -> bytes:
    return opener * n + closer * n


lenient_json_text = st.one_of(
    # Integers with more digits than Python's int() accepts by default (4,300).
    st.integers(4_301, 30_000).map(lambda n: b'{"type": "message", "value": ' + b"9" * n + b"}"),
    st.integers(4_301, 30_000).map(lambda n: b"-" + b"1" * n),
    # Nesting deeper than any recursive parser's stack. Depths between about 1,000 and
    # 3,000 are left out on purpose: the app parses them or not depending on the
    # interpreter's recursion limit, which is 1,000 in production but raised to about
    # 3,000 while pytest and hypothesis run, so there they would reach code (the SDK's
    # recursive deserializer) that production never hands them to.
    st.integers(5_000, 120_000).map(lambda n: _deep(n, b"[", b"]")),
    st.integers(5_000, 60_000).map(
        lambda n: b'{"type": "message", "value": ' + b'{"a":' * n + b"1" + b"}" * n + b"}"
    ),
    st.integers(5_000, 60_000).map(
        lambda n: b'{"type": "message", "value": ' + b"[" * n + b"1" + b"]" * n + b"}"
    ),
    # Nesting every parser here reads but that a JSON writer with a depth limit
    # (orjson's is 254) would refuse.
    st.integers(200, 900).map(lambda n: b'{"type": "message", "value": ' + b"[" * n + b"]" * n + b"}"),
    st.integers(200, 900).map(
        lambda n: b'{"type": "message", "value": ' + b'{"a":' * n + b"null" + b"}" * n + b"}"
    ),
    st.sampled_from(
        [
            b'{"type": "message", "text": NaN}',
            b'{"type": "message", "value": Infinity}',
            b'{"type": "message", "text": "\\ud800"}',
            b'{"type": "message", "text": "\\udfff\\ud800"}',
            b'{"type": "message", "type": "event"}',
            b'{"type": "message"}\n{"type": "message"}',
            b'\xef\xbb\xbf{"type": "message"}',
            b'{"type": "message", "text": "\x00"}',
            b"{'type': 'message'}",
            b'{"type": "message",}',
            b"null",
            b"true",
            b'"message"',
            b"[]",
            b"{}",
            b"   ",
        ]
    ),
)

content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "APPLICATION/JSON",
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "",
        "application/jsonp",
        "application/merge-patch+json",
    ]
) | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


def bodies(json_objects: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Request bodies: the given JSON, any JSON value, lenient-only JSON text, huge
    strings, random bytes and text."""
    small = [
        json_objects.map(dumps),
        junk_values.map(dumps),
        typed_values.map(dumps),
        lenient_json_text,
        st.binary(max_size=300),
        any_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    ]
    # one_of draws its branches evenly: listing the small ones twice makes about one body
    # in thirteen huge (a turn on a few hundred KB of text takes about a second).
    huge = huge_text().map(lambda s: dumps({"type": "message", "text": s}))
    return st.one_of(*small, *small, huge)


# ----- activities ---------------------------------------------------------------------------

# Every property of the Bot Framework activity schema, by its JSON name.
ACTIVITY_FIELDS: list[str] = [spec["key"] for spec in Activity._attribute_map.values()]
ACTIVITY_TYPES = ["message", "event", "typing", "invoke", "conversationUpdate", "endOfConversation", "trace"]

activity_types = st.sampled_from(ACTIVITY_TYPES) | junk_values


def activities(
    base: dict[str, Any], field_values: st.SearchStrategy[Any] | None = None
) -> st.SearchStrategy[Any]:
    """Activities of three kinds: `base` with one field given a value of the wrong type
    (every field of the schema in turn), `base` with many fields replaced at random, and
    activities built from nothing but junk."""
    values = field_values if field_values is not None else (junk_values | typed_values)
    one_wrong = st.sampled_from(ACTIVITY_FIELDS).flatmap(
        lambda key: values.map(lambda value: {**base, key: value})
    )
    many_wrong = st.fixed_dictionaries({}, optional={key: values for key in ACTIVITY_FIELDS}).map(
        lambda junk: {**base, **junk}
    )
    from_scratch = st.fixed_dictionaries(
        {"type": activity_types}, optional={k: values for k in ACTIVITY_FIELDS if k != "type"}
    )
    return st.one_of(one_wrong, many_wrong, from_scratch)


# ----- identifiers and tokens ---------------------------------------------------------------

# Conversation ids as they would appear in a URL path: any text, percent-encoded (so it
# survives as one path segment, whatever it contains), with a few hand-picked ones.
junk_ids = st.one_of(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=60),
    st.sampled_from([".", "..", "%", "%00", "null", "undefined", "a" * 500, "\u202e", "dl/x", "x|0000001"]),
    huge_text(200, 2_000),
)


def path_segment(raw: str) -> str:
    return quote(raw, safe="")


# Grants with any ids and expiry times: their claims are the junk (from_type builds
# the dataclass from its field types).
grants = st.from_type(DirectLineGrant)


def forged_tokens(real_key: bytes) -> st.SearchStrategy[str]:
    """Tokens the app never issued: random claims under a wrong key, `alg: none`, other
    algorithms, the right key with claims of the wrong types or times, and plain junk."""
    issuers = st.sampled_from(["aftercare-directline", "someone-else", ""])  # PyJWT only writes strings
    claims = st.one_of(
        st.tuples(grants, issuers).map(
            lambda gi: {
                "iss": gi[1],
                "conv": gi[0].conversation_id,
                "user": gi[0].user_id,
                "exp": gi[0].expires_at,
            }
        ),
        st.tuples(
            st.dictionaries(
                st.sampled_from(["conv", "user", "exp", "iat", "nbf", "jti", "aud"]), json_values, max_size=6
            ),
            issuers,
        ).map(lambda ci: {**ci[0], "iss": ci[1]}),
    )
    # Keys as long as HS512 wants, so PyJWT has nothing to warn about.
    wrong_key = st.binary(min_size=64, max_size=80)
    return st.one_of(
        st.tuples(claims, wrong_key).map(lambda ck: jwt.encode(ck[0], ck[1], algorithm="HS256")),
        claims.map(lambda c: jwt.encode(c, None, algorithm="none")),
        st.tuples(claims, wrong_key).map(lambda ck: jwt.encode(ck[0], ck[1] * 2, algorithm="HS512")),
        # Signed with the real key: the claims themselves must be checked, never trusted.
        claims.map(lambda c: jwt.encode(c, real_key, algorithm="HS256")),
        st.builds(
            lambda conv, user, age: jwt.encode(
                {"iss": "aftercare-directline", "conv": conv, "user": user, "exp": int(time.time()) - age},
                real_key,
                algorithm="HS256",
            ),
            short_text,
            short_text,
            st.integers(1, 10**6),
        ),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=300),
        st.lists(st.text("abcdefABCDEF0123456789-_", max_size=40), min_size=2, max_size=5).map(".".join),
    )


# Header values a client can send as text (no control characters: aiohttp's client refuses them).
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\x7f"), max_size=80
)
# Header values as raw bytes, including 0x80-0xff that are not UTF-8.
header_bytes = st.binary(max_size=60).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F))
