"""Where a reply is cut for synthesis: the caller hears the first piece once it alone is
synthesised, so a long reply must not start with a long piece."""

from __future__ import annotations

from bot.channels.voice import spoken_clauses


def test_a_reply_is_cut_after_sentences_semicolons_and_colons() -> None:
    reply = (
        "Our return policy in short: items can be returned; refunds take 5 days. "
        "Source: Returns policy. Anything else?"
    )
    assert spoken_clauses(reply) == [
        "Our return policy in short:",
        "items can be returned;",
        "refunds take 5 days.",
        "Source:",
        "Returns policy.",
        "Anything else?",
    ]


def test_times_amounts_and_ids_are_not_cut() -> None:
    reply = "We are open 9:00 to 17:00 (US Eastern time), and order W 1 2 3 costs $4.50 in total."
    assert spoken_clauses(reply) == [reply]


def test_blank_pieces_are_dropped() -> None:
    assert spoken_clauses("  Yes.   ") == ["Yes."]
    assert spoken_clauses("") == []
