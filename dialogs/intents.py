"""Intent classification by embedding similarity to example utterances (prompts/intents.yaml).

A message is scored against each intent mostly by its similarity to the intent's
centroid (the mean of its examples, which held-out evaluation found more robust than
nearest neighbours alone), plus a little of its nearest example (so a distinctive
phrasing still counts), plus a small bonus when it contains one of the intent's
keywords ("cancel", "tracking"): words that decide the intent however the rest of the
sentence reads. Ids, emails and numbers are masked first, so "cancel #W2611340" and "cancel
W1234567" look alike to the model. The held-out evaluation lives here too, so the
figure printed by `aftercare eval intents` is computed by the code the engine runs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from dialogs.entities import EMAIL_PATTERN
from prompts import INTENTS_FILE
from providers.embeddings import Embeddings, Vectors
from shop.errors import ConfigurationError

DEFAULT_INTENTS_FILE = INTENTS_FILE

# Score below which the engine asks the customer to rephrase; calibrated on the
# held-out examples and the conversation suites.
LOW_CONFIDENCE = 0.35
_CENTROID_WEIGHT = 0.8
_KEYWORD_BONUS = 0.08
_MIN_EXAMPLES = 2


@dataclass(frozen=True)
class IntentGuess:
    intent: str
    score: float
    runner_up: str
    runner_up_score: float


@dataclass(frozen=True)
class IntentSpec:
    """One intent of prompts/intents.yaml: its examples and its deciding keywords."""

    examples: list[str]
    keywords: list[str] = field(default_factory=list)
    # How much the centroid counts against the nearest example. An intent whose examples
    # span several topics (policy questions: returns, shipping, warranty ...) has a
    # centroid near none of them, so it is scored mostly by its nearest example.
    centroid_weight: float = _CENTROID_WEIGHT


def load_intents(path: Path = DEFAULT_INTENTS_FILE) -> dict[str, IntentSpec]:
    """Intent name -> its examples and keywords, in file order."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read the intent examples {path}: {exc}") from None
    intents = (data or {}).get("intents") or {}
    specs = {
        str(name): IntentSpec(
            examples=[str(e) for e in (body or {}).get("examples", [])],
            keywords=[str(k).lower() for k in (body or {}).get("keywords", [])],
            centroid_weight=float((body or {}).get("centroid_weight", _CENTROID_WEIGHT)),
        )
        for name, body in intents.items()
    }
    if len(specs) < 2 or any(len(spec.examples) < _MIN_EXAMPLES for spec in specs.values()):
        raise ConfigurationError(f"{path} must list intents with at least {_MIN_EXAMPLES} examples each")
    return specs


def mask(text: str) -> str:
    """The message with ids, emails and numbers replaced by stand-ins the examples use."""
    text = EMAIL_PATTERN.sub("my email", text)
    text = re.sub(r"#?\b[wW]\s?\d{7}\b", "W1234567", text)
    return re.sub(r"\b\d{5}\b", "12345", text)


class IntentClassifier:
    """Centroid-and-nearest-example classifier over a fixed set of embedded examples."""

    def __init__(self, embeddings: Embeddings, specs: dict[str, IntentSpec], vectors: Vectors) -> None:
        self._embeddings = embeddings
        self.intents: list[str] = list(specs)
        self._labels = np.array([name for name, spec in specs.items() for _ in spec.examples])
        self._vectors = vectors
        centroids = np.stack([vectors[self._labels == name].mean(axis=0) for name in self.intents])
        self._centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        self._centroid_weights = np.array([specs[name].centroid_weight for name in self.intents])
        # Examples are stored intent by intent, so each intent's best example is one
        # `maximum.reduceat` over the similarities from these offsets.
        self._starts = np.cumsum([0] + [len(specs[name].examples) for name in self.intents[:-1]])
        self._keywords = {
            name: [re.compile(rf"\b{re.escape(k)}", re.IGNORECASE) for k in spec.keywords]
            for name, spec in specs.items()
        }

    @property
    def embeddings(self) -> Embeddings:
        return self._embeddings

    @classmethod
    async def build(cls, embeddings: Embeddings, specs: dict[str, IntentSpec]) -> IntentClassifier:
        texts = [mask(text) for spec in specs.values() for text in spec.examples]
        return cls(embeddings, specs, await embeddings.embed(texts))

    async def classify(self, text: str) -> IntentGuess:
        masked = mask(text.strip()) or "hello"
        vector = (await self._embeddings.embed([masked]))[0]
        return self.nearest(masked, vector)

    def nearest(self, text: str, vector: Vectors) -> IntentGuess:
        """The best intent for a message already embedded as `vector`."""
        nearest_example = np.maximum.reduceat(self._vectors @ vector, self._starts)
        weights = self._centroid_weights
        combined = weights * (self._centroids @ vector) + (1 - weights) * nearest_example
        scores: list[tuple[float, str]] = []
        for index, intent in enumerate(self.intents):
            score = float(combined[index])
            if any(pattern.search(text) for pattern in self._keywords[intent]):
                score += _KEYWORD_BONUS
            scores.append((score, intent))
        scores.sort(reverse=True)
        (best, intent), (second, runner_up) = scores[0], scores[1]
        return IntentGuess(intent=intent, score=best, runner_up=runner_up, runner_up_score=second)


def held_out_split(
    specs: dict[str, IntentSpec], every: int = 5
) -> tuple[dict[str, IntentSpec], list[tuple[str, str]]]:
    """(training intents, held-out (intent, text) pairs): every `every`-th example of each
    intent is held out, so the split is the same on every run and every machine."""
    train: dict[str, IntentSpec] = {}
    test: list[tuple[str, str]] = []
    for name, spec in specs.items():
        kept = [t for i, t in enumerate(spec.examples) if i % every != every - 1]
        train[name] = IntentSpec(examples=kept, keywords=spec.keywords, centroid_weight=spec.centroid_weight)
        test.extend((name, t) for i, t in enumerate(spec.examples) if i % every == every - 1)
    return train, test


@dataclass
class IntentReport:
    total: int
    correct: int
    per_intent: dict[str, tuple[int, int]] = field(default_factory=dict)  # intent -> (correct, total)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (expected, got) -> count
    mistakes: list[tuple[str, str, str]] = field(default_factory=list)  # (text, expected, got)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


async def evaluate(embeddings: Embeddings, specs: dict[str, IntentSpec], every: int = 5) -> IntentReport:
    """Trains on all but every `every`-th example per intent and classifies the rest."""
    train, test = held_out_split(specs, every)
    classifier = await IntentClassifier.build(embeddings, train)
    report = IntentReport(total=len(test), correct=0)
    masked = [mask(text) for _, text in test]
    vectors = await embeddings.embed(masked)
    for (expected, text), masked_text, vector in zip(test, masked, vectors, strict=True):
        got = classifier.nearest(masked_text, vector).intent
        right, seen = report.per_intent.get(expected, (0, 0))
        report.per_intent[expected] = (right + (got == expected), seen + 1)
        if got == expected:
            report.correct += 1
        else:
            report.confusions[(expected, got)] += 1
            report.mistakes.append((text, expected, got))
    return report
