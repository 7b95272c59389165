"""JSGF grammars for the moments of a call whose answers have a known shape.

A grammar recognises what it allows far better than dictation does (a zip code, a
customer's name from the shop's own list), and forces anything else into its shape, so
the local recognizer runs both and keeps the grammar's reading only when it scores at
least as well as dictation's (`providers.speech.local`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import MappingProxyType

from providers.speech.base import Expectation, Vocabulary

_DIGIT = "<digit> = zero | oh | one | two | three | four | five | six | seven | eight | nine;"
_YES_NO = """
public <answer> = [<lead>] (<yes> | <no>) [<tail>];
<lead> = okay | oh | um | well;
<yes> = yes | yeah | yep | sure | correct | right | that's right | that's correct | please do
      | go ahead | do it | absolutely | of course;
<no> = no | nope | no thanks | no thank you | don't | do not | not now | cancel that;
<tail> = please | please do | go ahead | do it | cancel it | thanks | thank you | that's right;
"""
_DIGITS = f"""
public <digits> = [<lead>] <digit>+;
<lead> = it's | it is | the number is | my number is;
{_DIGIT}
"""
_ZIP = f"""
public <zip> = [<lead>] <digit> <digit> <digit> <digit> <digit>;
<lead> = it's | it is | my zip code is | my zip is | the zip code is | zip code | zip;
{_DIGIT}
"""
_ORDER_ID = f"""
public <order> = [<lead>] [<w>] <digit> <digit> <digit> <digit> <digit> <digit> <digit>;
<lead> = it's | it is | order | order number | my order is | my order number is | the order is;
<w> = w | double you;
{_DIGIT}
"""


def _identity(vocabulary: Vocabulary, known: Callable[[str], bool]) -> str | None:
    firsts = sorted({name.lower() for name in vocabulary.first_names if known(name.lower())})
    lasts = sorted({name.lower() for name in vocabulary.last_names if known(name.lower())})
    if not firsts or not lasts:
        return None
    return f"""
public <identity> = [<lead>] [<intro>] (<name> [[and] [<zip_intro>] <zip>] | [<zip_intro>] <zip>);
<lead> = hi | hello | yes | sure | okay | yeah;
<intro> = my name is | it's | this is | i am | i'm | the name is;
<name> = <first> <last> | <first> | <last>;
<zip_intro> = my zip code is | my zip is | zip code | zip | the zip code is | and the zip is;
<zip> = <digit> <digit> <digit> <digit> <digit>;
<first> = {" | ".join(firsts)};
<last> = {" | ".join(lasts)};
{_DIGIT}
"""


def grammars(vocabulary: Vocabulary, known: Callable[[str], bool]) -> MappingProxyType[Expectation, str]:
    """The JSGF text per expectation. `known` says whether the recognizer's dictionary
    has a word: a name it cannot pronounce is left out rather than failing the grammar."""
    bodies: dict[Expectation, str | None] = {
        "yes_no": _YES_NO,
        "digits": _DIGITS,
        "zip": _ZIP,
        "order_id": _ORDER_ID,
        "identity": _identity(vocabulary, known),
    }
    return MappingProxyType(
        {name: f"#JSGF V1.0;\ngrammar {name};\n{body}" for name, body in bodies.items() if body}
    )


def unknown_words(vocabulary: Vocabulary, known: Callable[[str], bool]) -> list[str]:
    """The names callers cannot be heard saying (for the start-up log)."""
    names: Iterable[str] = (*vocabulary.first_names, *vocabulary.last_names)
    return sorted({name for name in names if not known(name.lower())})
