"""The conversation logic, free of Bot Framework types.

    resources = await OfflineResources.build(embeddings)      # once per process
    engine = build_offline_engine(retail, resources)          # cheap; per app or per test
    replies = await engine.respond(text, value, state, Channel(id=activity.channel_id))

`build_offline_engine_from(retail, embeddings)` does both steps at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dialogs.catalog import ProductIndex
from dialogs.intents import DEFAULT_INTENTS_FILE, IntentClassifier, load_intents
from dialogs.knowledge import DEFAULT_KNOWLEDGE_DIR, KnowledgeBase
from dialogs.offline import OfflineEngine
from dialogs.tools.runner import ToolRunner
from dialogs.turn import Channel, DialogEngine, DialogState, PendingAction, Reply
from providers.embeddings import Embeddings
from shop.retail import RetailService


@dataclass(frozen=True)
class OfflineResources:
    """What the offline engine computes once: the embedded intent examples and the
    indexed policy documents. Independent of any store or event loop, so one instance
    serves every engine (and every test) in the process."""

    classifier: IntentClassifier
    knowledge: KnowledgeBase

    @classmethod
    async def build(
        cls,
        embeddings: Embeddings,
        *,
        intents_file: Path = DEFAULT_INTENTS_FILE,
        knowledge_dir: Path = DEFAULT_KNOWLEDGE_DIR,
    ) -> OfflineResources:
        classifier = await IntentClassifier.build(embeddings, load_intents(intents_file))
        knowledge = await KnowledgeBase.build(embeddings, knowledge_dir)
        return cls(classifier=classifier, knowledge=knowledge)


def build_offline_engine(
    retail: RetailService, resources: OfflineResources, products: ProductIndex | None = None
) -> OfflineEngine:
    """The offline policy engine over `retail`, with its own tools and confirmation gate;
    `products` lets it answer catalogue questions by meaning."""
    tools = ToolRunner(retail, resources.knowledge, products)
    return OfflineEngine(tools, resources.classifier, resources.knowledge)


async def build_offline_engine_from(retail: RetailService, embeddings: Embeddings) -> OfflineEngine:
    return build_offline_engine(retail, await OfflineResources.build(embeddings))


__all__ = [
    "Channel",
    "DialogEngine",
    "DialogState",
    "OfflineEngine",
    "OfflineResources",
    "PendingAction",
    "Reply",
    "ToolRunner",
    "build_offline_engine",
    "build_offline_engine_from",
]
