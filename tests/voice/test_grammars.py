"""The JSGF grammars of a call's structured moments: names the recognizer cannot say are
left out, and every grammar loads into pocketsphinx (a word outside its dictionary, or a
syntax slip, fails the whole grammar)."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from pocketsphinx import Decoder

from providers.speech.base import Expectation, Vocabulary
from providers.speech.grammars import grammars, unknown_words
from tests.voice.conftest import shop_vocabulary

VOCABULARY = Vocabulary(first_names=("Amelia", "Zxqv"), last_names=("Wilson", "Qqqz"))


def known_except_made_up(word: str) -> bool:
    return word not in {"zxqv", "qqqz"}


def test_names_the_recognizer_does_not_know_are_left_out() -> None:
    identity = grammars(VOCABULARY, known_except_made_up)["identity"]
    assert "amelia" in identity and "wilson" in identity
    assert "zxqv" not in identity and "qqqz" not in identity
    assert unknown_words(VOCABULARY, known_except_made_up) == ["Qqqz", "Zxqv"]


@pytest.mark.parametrize(
    "vocabulary",
    [
        Vocabulary(),
        Vocabulary(first_names=("Amelia",)),
        Vocabulary(last_names=("Wilson",)),
        Vocabulary(first_names=("Zxqv",), last_names=("Wilson",)),
    ],
    ids=["no-names", "no-last-names", "no-first-names", "no-known-first-name"],
)
def test_no_identity_grammar_without_a_first_and_a_last_name(vocabulary: Vocabulary) -> None:
    built = grammars(vocabulary, known_except_made_up)
    assert "identity" not in built
    assert set(built) == {"yes_no", "digits", "zip", "order_id"}


def test_each_grammar_is_named_for_its_expectation() -> None:
    for name, text in grammars(VOCABULARY, known_except_made_up).items():
        assert name in get_args(Expectation)
        assert text.startswith(f"#JSGF V1.0;\ngrammar {name};\n")


def test_every_grammar_loads_into_pocketsphinx_with_the_shops_customers(dataset_dir: Path) -> None:
    grammar_decoder = Decoder(samprate=16000, lm=None, loglevel="FATAL")

    def known(word: str) -> bool:
        return grammar_decoder.lookup_word(word) is not None

    built = grammars(shop_vocabulary(dataset_dir), known)
    assert set(built) == {"yes_no", "digits", "zip", "order_id", "identity"}
    for name, text in built.items():
        grammar_decoder.add_jsgf_string(name, text)  # raises ValueError when it does not parse
        grammar_decoder.activate_search(name)
