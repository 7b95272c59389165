"""The shop's policy documents (`prompts/knowledge/*.md`) as a searchable knowledge base.

Each `## section` of a document is one passage. Search is hybrid: BM25 (rank-bm25)
catches the exact words customers use ("refund", "warranty"), and embeddings, when a
provider is given, catch paraphrases ("my money back"). Answers are extractive: the
sentences of the best passage closest to the question, with the document and section
named, so a policy is quoted, never invented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prompts import KNOWLEDGE_DIR
from providers.embeddings import Embeddings
from shop.errors import ConfigurationError

DEFAULT_KNOWLEDGE_DIR = KNOWLEDGE_DIR

# fmt: off
_STOPWORDS = frozenset([
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "is", "are", "be", "can", "i", "my",
    "me", "we", "you", "your", "it", "do", "does", "what", "how", "when", "where", "which", "who",
    "will", "with", "this", "that", "at", "by", "from", "if", "not", "no", "as", "was", "there",
    "their", "our", "us", "have", "has", "get", "got", "after", "before",
    "about", "any", "just", "only", "also", "then", "than", "so", "but", "would", "could", "should",
    "may", "might", "once", "been", "did", "done"
])
# fmt: on
# Below this combined score the best passage is more likely noise than an answer.
MIN_ANSWER_SCORE = 0.35


@dataclass(frozen=True)
class Passage:
    document: str  # file stem, e.g. "returns"
    title: str  # the document's "# title"
    section: str  # the "## section" heading
    text: str

    @property
    def citation(self) -> str:
        return f"{self.title}, “{self.section}”"


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.passage.citation,
            "document": self.passage.document,
            "text": self.passage.text,
            "score": round(self.score, 3),
        }


@dataclass(frozen=True)
class Answer:
    text: str
    passage: Passage
    score: float


def _tokens(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return [_stem(w) for w in words if w not in _STOPWORDS]


def _stem(word: str) -> str:
    # Enough stemming for policy text: "refunds"/"refunded"/"refunding" -> "refund".
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            # "shipped" -> "shipp" -> "ship", as "shipping" and "ship" stem.
            if suffix in ("ing", "ed") and len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                stem = stem[:-1]
            return stem
    return word


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def load_passages(directory: Path) -> list[Passage]:
    passages: list[Passage] = []
    for path in sorted(directory.glob("*.md")):
        passages.extend(_document_passages(path))
    if not passages:
        raise ConfigurationError(f"no policy documents (## sections in *.md) found in {directory}")
    return passages


def _document_passages(path: Path) -> list[Passage]:
    """One passage per `## section` of a markdown document titled by its `# heading`."""
    title, section, lines = path.stem, "", list[str]()
    passages: list[Passage] = []
    for line in [*path.read_text(encoding="utf-8").splitlines(), "## "]:
        if line.startswith("# "):
            title = line[2:].strip()
        elif line.startswith("## "):
            body = " ".join(" ".join(lines).split())
            if section and body:
                passages.append(Passage(path.stem, title, section, body))
            section, lines = line[3:].strip(), []
        else:
            lines.append(line)
    return passages


class KnowledgeBase:
    """Policy passages with a BM25 index and, optionally, their embeddings."""

    def __init__(self, passages: list[Passage], embeddings: Embeddings | None, vectors: Any) -> None:
        try:
            from rank_bm25 import BM25Okapi
        except ImportError:
            raise ConfigurationError(
                "policy search needs 'rank-bm25' (install the 'local' extra: pip install -e '.[local]')"
            ) from None
        self.passages = passages
        self._embeddings = embeddings
        self._vectors = vectors
        # Title and section words count too: "warranty" is in the heading, not every sentence.
        self._bm25 = BM25Okapi([_tokens(f"{p.title} {p.section} {p.text}") for p in passages])

    @classmethod
    async def build(
        cls, embeddings: Embeddings | None, directory: Path = DEFAULT_KNOWLEDGE_DIR
    ) -> KnowledgeBase:
        passages = load_passages(directory)
        vectors = None
        if embeddings is not None:
            vectors = await embeddings.embed([f"{p.title}. {p.section}. {p.text}" for p in passages])
        return cls(passages, embeddings, vectors)

    async def search(self, query: str, *, limit: int = 3) -> list[Hit]:
        scores = np.asarray(self._bm25.get_scores(_tokens(query)), dtype=np.float64)
        top = float(scores.max()) if len(scores) else 0.0
        lexical = scores / top if top > 0 else scores
        if self._embeddings is not None and self._vectors is not None:
            query_vector = (await self._embeddings.embed([query]))[0]
            semantic = self._vectors @ query_vector
            combined = 0.35 * lexical + 0.65 * semantic
        else:
            combined = 0.6 * lexical
        order = np.argsort(-combined)[:limit]
        return [Hit(self.passages[i], float(combined[i])) for i in order]

    async def answer(self, question: str, *, max_sentences: int = 2) -> Answer | None:
        """The best passage's sentences closest to the question, or None when no passage
        fits well enough to quote."""
        hits = await self.search(question, limit=1)
        if not hits or hits[0].score < MIN_ANSWER_SCORE:
            return None
        passage = hits[0].passage
        sentences = _sentences(passage.text)
        if len(sentences) > max_sentences:
            sentences = await self._closest_sentences(question, sentences, max_sentences)
        return Answer(text=" ".join(sentences), passage=passage, score=hits[0].score)

    async def _closest_sentences(self, question: str, sentences: list[str], keep: int) -> list[str]:
        if self._embeddings is not None:
            vectors = await self._embeddings.embed([question, *sentences])
            scores = vectors[1:] @ vectors[0]
        else:
            wanted = set(_tokens(question))
            scores = np.array([len(wanted & set(_tokens(s))) for s in sentences], dtype=np.float64)
        chosen = sorted(np.argsort(-scores)[:keep])  # back in the document's order
        return [sentences[i] for i in chosen]
