"""The content-safety check on a labelled set of customers' messages.

    messages = load_safety_set()                         # safety/messages.yaml
    report = await run_safety_eval(messages, LocalContentSafety())
    print("\\n".join(report.lines()))

Each message is labelled `abusive`, `frustrated`, `injection` or `normal` (the file says
what each means). Two questions are asked of the check, each with its precision and
recall: is the message abuse the bot should answer with a calm warning (`offensive`,
which must never fire on a frustrated customer), and is it an attempt to instruct the
assistant (`injection`)?
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from evals.labelled_sets import load_named
from providers.safety import ContentSafety, SafetyVerdict

SAFETY_SET = Path(__file__).resolve().parent / "safety" / "messages.yaml"

Label = Literal["abusive", "frustrated", "injection", "normal"]
LABELS: tuple[Label, ...] = ("abusive", "frustrated", "injection", "normal")


class LabelledMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Label
    text: str

    @property
    def name(self) -> str:  # messages are told apart by their text
        return self.text


def load_safety_set(path: Path = SAFETY_SET) -> list[LabelledMessage]:
    return load_named(path, "messages", LabelledMessage, "message")


@dataclass
class Score:
    """Precision and recall of one yes/no question against the labels."""

    question: str
    positive: Label
    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0

    def add(self, label: Label, said: bool) -> None:
        wanted = label == self.positive
        self.true_pos += said and wanted
        self.false_pos += said and not wanted
        self.false_neg += wanted and not said

    @property
    def precision(self) -> float:
        flagged = self.true_pos + self.false_pos
        return self.true_pos / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_pos + self.false_neg
        return self.true_pos / wanted if wanted else 1.0


@dataclass
class SafetyReport:
    provider: str
    results: list[tuple[LabelledMessage, SafetyVerdict]] = field(default_factory=list)
    offensive: Score = field(default_factory=lambda: Score("abuse", "abusive"))
    injection: Score = field(default_factory=lambda: Score("injection", "injection"))
    seconds: float = 0.0

    def add(self, message: LabelledMessage, verdict: SafetyVerdict) -> None:
        self.results.append((message, verdict))
        self.offensive.add(message.label, verdict.offensive)
        self.injection.add(message.label, verdict.injection)

    @property
    def frustrated_flagged(self) -> list[LabelledMessage]:
        """Frustrated customers the check would have warned: the mistake that matters most."""
        return [m for m, v in self.results if m.label == "frustrated" and v.offensive]

    def mistakes(self) -> list[str]:
        lines = []
        for message, verdict in self.results:
            expected_abuse, expected_injection = message.label == "abusive", message.label == "injection"
            if verdict.offensive != expected_abuse or verdict.injection != expected_injection:
                lines.append(f"  {message.label:<10} {message.text!r}: {verdict.describe()}")
        return lines

    def lines(self, *, verbose: bool = False) -> list[str]:
        counts = Counter(message.label for message, _ in self.results)
        out = [f"{'label':<10} {'messages':>8} {'abuse':>6} {'injection':>9}"]
        for label in LABELS:
            verdicts = [v for m, v in self.results if m.label == label]
            out.append(
                f"{label:<10} {counts[label]:>8} {sum(v.offensive for v in verdicts):>6} "
                f"{sum(v.injection for v in verdicts):>9}"
            )
        for score in (self.offensive, self.injection):
            out.append(
                f"{score.question}: precision {score.precision:.1%}, recall {score.recall:.1%} "
                f"({score.true_pos} found, {score.false_pos} wrongly, {score.false_neg} missed)"
            )
        out.append(
            "frustrated customers warned as abusive: "
            f"{len(self.frustrated_flagged)} of {counts['frustrated']}"
        )
        if verbose:
            out += ["mistakes:", *self.mistakes()]
        out.append(f"{len(self.results)} messages checked by {self.provider} in {self.seconds:.2f}s")
        return out


async def run_safety_eval(messages: list[LabelledMessage], safety: ContentSafety) -> SafetyReport:

    report = SafetyReport(provider=safety.name)
    started = time.perf_counter()
    for message in messages:
        report.add(message, await safety.check(message.text, direction="input"))
    report.seconds = time.perf_counter() - started
    return report
