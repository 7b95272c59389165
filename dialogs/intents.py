"""Intent classification by embedding similarity to example utterances (prompts/intents.yaml).

A message is scored against each intent mostly by its similarity to the intent's
centroid (the mean of its examples, which held-out evaluation found more robust than
nearest neighbours alone), plus a little of its nearest example (so a distinctive
phrasing still counts), plus a small bonus when it contains one of the intent's
keywords ("cancel", "tracking"): words that decide the intent however the rest of the
sentence reads. That similarity is the guess's `score`, the engine's measure of how sure
it is (`LOW_CONFIDENCE`).

Which intent wins is decided with one more vote: a softmax (logistic) layer trained on
the same example embeddings when the classifier is built. Similarity alone confuses
intents whose examples share words ("where's the money from my cancellation" is a
refund, not a cancellation); a trained layer weighs the directions in which two intents'
examples differ, and on the held-out examples it adds about five points. It is trained
by a fixed number of Adam steps from zeros, so every build gives the same weights.

Ids, emails and numbers are masked first, so "cancel #W2611340" and "cancel W1234567"
look alike to the model. The held-out evaluation lives here too, so the figure printed
by `aftercare eval intents` is computed by the code the engine runs.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
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
# How much the trained layer's probability counts in choosing the intent (the similarity
# is in about 0.2-0.9); chosen by five-fold cross-validation over the examples.
_MODEL_WEIGHT = 1.0
# ... and only among intents whose similarity is within this of the best one ("#W... cancelled"
# is nearer cancellations than refunds; unchecked, the layer read it as a refund).
_MODEL_MARGIN = 0.15
# Besides the embedding, the layer reads which words and word pairs a message has
# ("list", "my orders", "in general"): words seen in at least two examples, as a vector
# of this length beside the unit-length embedding.
_MIN_WORD_COUNT = 2
_WORDS_WEIGHT = 0.6
# The trained layer: logits scaled by this temperature, a little weight decay, and this
# many Adam steps (enough to converge on a thousand examples; more changed nothing).
_TEMPERATURE = 10.0
_WEIGHT_DECAY = 1e-4
_STEPS = 100
_LEARNING_RATE = 0.05


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


def _masked(text: str) -> str:
    return mask(text.strip()) or "hello"


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
        # One pattern per intent (its keywords as alternatives): a search per intent per
        # message instead of one per keyword.
        self._keywords = [
            re.compile(r"\b(?:" + "|".join(re.escape(k) for k in specs[name].keywords) + ")", re.IGNORECASE)
            if specs[name].keywords
            else None
            for name in self.intents
        ]
        examples = [mask(text) for spec in specs.values() for text in spec.examples]
        counts = Counter(word for text in examples for word in set(_words(text)))
        self._vocabulary = {
            word: index
            for index, word in enumerate(sorted(w for w, n in counts.items() if n >= _MIN_WORD_COUNT))
        }
        labels = np.array([self.intents.index(name) for name in self._labels])
        features = np.hstack([np.asarray(vectors, dtype=np.float32), self._bag_of_words(examples)])
        self._weights, self._bias = _train_softmax(features, labels, len(self.intents))
        # The layer's weights split by what they read, so a message's logits are its
        # embedding's product plus the rows of the few known words it has (a message has
        # a handful of the vocabulary's thousand-odd words; no dense vector is built).
        dimensions = features.shape[1] - len(self._vocabulary)
        self._embedding_weights = self._weights[:dimensions]
        self._word_weights = self._weights[dimensions:]

    @property
    def embeddings(self) -> Embeddings:
        return self._embeddings

    @classmethod
    async def build(cls, embeddings: Embeddings, specs: dict[str, IntentSpec]) -> IntentClassifier:
        texts = [mask(text) for spec in specs.values() for text in spec.examples]
        return cls(embeddings, specs, await embeddings.embed(texts))

    async def classify(self, text: str) -> IntentGuess:
        masked = _masked(text)
        vector = (await self._embeddings.embed([masked]))[0]
        return self.nearest(masked, vector)

    async def prepare(self, texts: Sequence[str]) -> None:
        """Embeds `texts` together, so that classifying them one after another reads the
        embeddings' cache: one pass of the model rather than one pass, waited for, each."""
        await self._embeddings.embed(list(dict.fromkeys(_masked(text) for text in texts)))

    def nearest(self, text: str, vector: Vectors) -> IntentGuess:
        """The best intent for a message already embedded as `vector`."""
        nearest_example = np.maximum.reduceat(self._vectors @ vector, self._starts)
        weights = self._centroid_weights
        similarity = weights * (self._centroids @ vector) + (1 - weights) * nearest_example
        for index, pattern in enumerate(self._keywords):
            if pattern is not None and pattern.search(text):
                similarity[index] += _KEYWORD_BONUS
        logits = np.asarray(vector, dtype=np.float32) @ self._embedding_weights + self._bias
        known = self._known_words(text)
        if known:
            # The same as `_bag_of_words`: each known word 1, scaled to `_WORDS_WEIGHT`.
            logits = logits + self._word_weights[known].sum(axis=0) * (_WORDS_WEIGHT / np.sqrt(len(known)))
        votes = similarity + _MODEL_WEIGHT * _softmax(logits * _TEMPERATURE)
        # The layer breaks near ties; it never picks an intent the message is far from.
        far = similarity < similarity.max() - _MODEL_MARGIN
        votes[far] = similarity[far] - _MODEL_WEIGHT - 1  # after every near one, by similarity
        best, second = np.argsort(-votes, kind="stable")[:2]
        return IntentGuess(
            intent=self.intents[best],
            score=float(similarity[best]),
            runner_up=self.intents[second],
            runner_up_score=float(similarity[second]),
        )

    def _known_words(self, text: str) -> list[int]:
        """The vocabulary's indices of the words and word pairs `text` has."""
        return sorted({self._vocabulary[w] for w in _words(text) if w in self._vocabulary})

    def _bag_of_words(self, texts: list[str]) -> np.ndarray:
        """One row per text: which known words and word pairs it has, scaled to a length
        of `_WORDS_WEIGHT` beside the unit-length embedding."""
        rows = np.zeros((len(texts), len(self._vocabulary)), dtype=np.float32)
        for row, text in enumerate(texts):
            rows[row, self._known_words(text)] = 1.0
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        scaled: np.ndarray = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0) * _WORDS_WEIGHT
        return scaled


def _words(text: str) -> list[str]:
    """The lowercase words of a (masked) message and its pairs of neighbouring words."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    result: np.ndarray = shifted / shifted.sum(axis=-1, keepdims=True)
    return result


def _train_softmax(vectors: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic layer over the example embeddings: (weights, bias)."""
    weights = np.zeros((vectors.shape[1], classes), dtype=np.float32)
    bias = np.zeros(classes, dtype=np.float32)
    targets = np.eye(classes, dtype=np.float32)[labels]
    moments = [np.zeros_like(weights), np.zeros_like(weights), np.zeros_like(bias), np.zeros_like(bias)]
    for step in range(1, _STEPS + 1):
        error = (_softmax((vectors @ weights + bias) * _TEMPERATURE) - targets) / len(vectors)
        for index, (param, grad) in enumerate(
            ((weights, vectors.T @ error + _WEIGHT_DECAY * weights), (bias, error.sum(axis=0)))
        ):
            first, second = moments[2 * index], moments[2 * index + 1]
            first *= 0.9
            first += 0.1 * grad
            second *= 0.999
            second += 0.001 * grad * grad
            param -= _LEARNING_RATE * (first / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
    return weights, bias


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

    def matrix(self) -> tuple[list[str], list[list[int]]]:
        """(intents, counts): counts[i][j] held-out examples of intents[i] classified as
        intents[j]; the diagonal is what was right."""
        intents = sorted(set(self.per_intent) | {got for _, got in self.confusions})
        counts = [[0] * len(intents) for _ in intents]
        for row, expected in enumerate(intents):
            counts[row][row] = self.per_intent.get(expected, (0, 0))[0]
        for (expected, got), count in self.confusions.items():
            counts[intents.index(expected)][intents.index(got)] += count
        return intents, counts


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
