"""What content safety is to the dialogs: a check of one text, a customer's message
(`input`) or the assistant's answer (`output`), that says what it found and how bad.

`ContentSafety` is the protocol; `local` (word lists and patterns, the embedded default)
and `azure` (Azure AI Content Safety) implement it, and `providers.factory` picks one
from CONTENT_SAFETY. The policy (what the bot does about a finding) lives in
`dialogs.safety`, not here: a provider only reads text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

Direction = Literal["input", "output"]


class Category(StrEnum):
    ABUSE = "abuse"  # insults, harassment or profanity aimed at the assistant or the staff
    HATE = "hate"  # slurs, attacks on people for who they are
    SEXUAL = "sexual"
    VIOLENCE = "violence"  # threats
    SELF_HARM = "self_harm"
    PROMPT_INJECTION = "prompt_injection"  # text that tries to give the assistant instructions
    PROMPT_LEAK = "prompt_leak"  # an answer that repeats the assistant's instructions


# Severities on Azure AI Content Safety's scale (0-7; its four-level output gives 0, 2, 4, 6).
SAFE, LOW, MEDIUM, HIGH = 0, 2, 4, 6
# The categories that make a customer's message offensive (the policy's "abuse").
OFFENSIVE = frozenset({Category.ABUSE, Category.HATE, Category.SEXUAL, Category.VIOLENCE})
# The categories that make an answer unfit to send.
HARMFUL = frozenset({Category.HATE, Category.SEXUAL, Category.VIOLENCE, Category.SELF_HARM})


@dataclass(frozen=True)
class Finding:
    category: Category
    severity: int
    source: str  # which provider and which rule, for the log and the transcript note


@dataclass(frozen=True)
class SafetyVerdict:
    """What a check found. `checked` is False when a provider could not check (its service
    failed) and let the text through: what it holds then came from the others, if any."""

    findings: tuple[Finding, ...] = ()
    checked: bool = True

    def severity(self, *categories: Category) -> int:
        return max((f.severity for f in self.findings if f.category in categories), default=SAFE)

    @property
    def offensive(self) -> bool:
        """Abuse, hate, sexual content or threats at medium severity or worse."""
        return self.severity(*OFFENSIVE) >= MEDIUM

    @property
    def self_harm(self) -> bool:
        return self.severity(Category.SELF_HARM) >= MEDIUM

    @property
    def injection(self) -> bool:
        return any(f.category == Category.PROMPT_INJECTION for f in self.findings)

    @property
    def unfit_answer(self) -> bool:
        """An answer that must not be sent: harmful at medium or worse, or a prompt leak."""
        return self.severity(*HARMFUL) >= MEDIUM or any(
            f.category == Category.PROMPT_LEAK for f in self.findings
        )

    def describe(self) -> str:
        return ", ".join(f"{f.category} {f.severity} ({f.source})" for f in self.findings) or "nothing"


CLEAN = SafetyVerdict()


class ContentSafety(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def checks_output(self) -> bool:
        """Whether checking the assistant's answers is worth a call (the dialog skips it if not)."""
        ...

    async def check(self, text: str, *, direction: Direction) -> SafetyVerdict:
        """What `text` holds. Never raises for a service failure: a provider that cannot
        check logs it and answers with `checked=False`."""
        ...

    async def aclose(self) -> None: ...


class NoContentSafety:
    """CONTENT_SAFETY=off: nothing is checked."""

    name = "off"
    checks_output = False

    async def check(self, text: str, *, direction: Direction) -> SafetyVerdict:
        return CLEAN

    async def aclose(self) -> None:
        return None


class CombinedSafety:
    """Several providers on the same text at once; their findings together.

    Used for Azure: its categories read hate, sexual content, violence and self-harm well,
    but an insult aimed at the assistant ("you useless idiot") is rarely more than low
    severity there, so the local rules for abuse and injection run beside it."""

    def __init__(self, providers: Sequence[ContentSafety]) -> None:
        self._providers = list(providers)
        self.name = "+".join(p.name for p in self._providers)

    @property
    def checks_output(self) -> bool:
        return any(p.checks_output for p in self._providers)

    async def check(self, text: str, *, direction: Direction) -> SafetyVerdict:
        chosen = [p for p in self._providers if direction == "input" or p.checks_output]
        verdicts = await asyncio.gather(*(p.check(text, direction=direction) for p in chosen))
        return SafetyVerdict(
            findings=tuple(f for verdict in verdicts for f in verdict.findings),
            checked=all(verdict.checked for verdict in verdicts),
        )

    async def aclose(self) -> None:
        for provider in self._providers:
            await provider.aclose()
