"""Sentiment per message, catalogue search, and product suggestions behind the gate: the
offline engine inside the engine the bot uses, over the full dataset in SQLite."""

from __future__ import annotations

import json

import pytest

from dialogs import OfflineResources, build_offline_engine
from dialogs.catalog import ProductIndex, product_text
from dialogs.engine import SupportEngine
from dialogs.suggestions import Recommender, decide
from dialogs.turn import Channel, DialogState, Reply
from providers.sentiment.local import LocalSentiment
from shop.retail import RetailService
from shop.store.sqlite import SqliteStore

NOAH_EMAIL, NOAH = "noah.brown7922@example.com", "noah_brown_6181"


@pytest.fixture
async def products(retail_sqlite: SqliteStore, offline_resources: OfflineResources) -> ProductIndex:
    index = ProductIndex(RetailService(retail_sqlite), offline_resources.classifier.embeddings, retail_sqlite)
    await index.refresh()
    return index


def make_engine(
    store: SqliteStore, resources: OfflineResources, products: ProductIndex, *, on: bool = True
) -> SupportEngine:
    retail = RetailService(store)
    offline = build_offline_engine(retail, resources, products)
    return SupportEngine(offline, LocalSentiment(), Recommender(retail, products), recommendations=on)


async def talk(engine: SupportEngine, state: DialogState, *messages: str) -> list[Reply]:
    replies: list[Reply] = []
    for message in messages:
        replies = await engine.respond(message, None, state, Channel(id="webchat"))
    return replies


def notes(state: DialogState) -> list[str]:
    return [entry.text for entry in state.transcript if entry.role == "note"]


async def test_a_happy_customer_gets_three_available_products_they_do_not_own(
    retail_sqlite: SqliteStore, offline_resources: OfflineResources, products: ProductIndex
) -> None:
    engine, state = make_engine(retail_sqlite, offline_resources, products), DialogState()
    replies = await talk(
        engine, state, NOAH_EMAIL, "where is my order #W7678072?", "great, thank you so much!"
    )
    suggestion = replies[-1]
    assert suggestion.card is not None and "You might also like" in json.dumps(suggestion.card)
    assert suggestion.speak.startswith("Before you go") and "No thanks" in suggestion.suggested_actions
    assert notes(state)[-1].startswith("gate: open, sentiment +")
    owned = await Recommender(RetailService(retail_sqlite), products).owned(NOAH)
    hits = products.near(sorted(owned), 3, exclude=owned)
    assert len(hits) == 3 and not {hit.product_id for hit in hits} & owned
    assert all(hit.in_stock > 0 and hit.name in json.dumps(suggestion.card) for hit in hits)
    # On a call the products are one spoken sentence; where no card shows, the text lists them.
    assert all(hit.name in suggestion.speak for hit in hits)
    voice = await make_engine(retail_sqlite, offline_resources, products).respond(
        "thanks, bye", None, DialogState(verified_user_id=NOAH, sentiment=[0.5, 0.6]), Channel(id="voice")
    )
    assert voice[-1].card is None and all(hit.name in voice[-1].text for hit in hits)
    # Each customer message carries its score, in the state and in the transcript.
    assert len(state.sentiment) == 3 and state.sentiment[-1] > 0.5
    assert [e.sentiment for e in state.transcript if e.role == "user"][-1] == state.sentiment[-1]


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([NOAH_EMAIL, "this is ridiculous, my package arrived damaged", "ok thanks"], "a complaint is open"),
        (
            [NOAH_EMAIL, "where is #W7678072? oh great, another delay. just perfect.", "thanks I guess"],
            "sentiment",
        ),
        ([NOAH_EMAIL, "I want to talk to a person", "thanks"], "a person was asked for"),
        (["what is your return policy?", "thanks a lot, that helps"], "not verified"),
    ],
    ids=["complaint", "sarcasm", "handoff", "unverified"],
)
async def test_the_gate_stays_closed_and_says_why(
    messages: list[str],
    reason: str,
    retail_sqlite: SqliteStore,
    offline_resources: OfflineResources,
    products: ProductIndex,
) -> None:
    engine, state = make_engine(retail_sqlite, offline_resources, products), DialogState()
    replies = await talk(engine, state, *messages)
    assert all(reply.card is None or "You might also like" not in json.dumps(reply.card) for reply in replies)
    assert not state.suggested
    assert notes(state) and notes(state)[-1].startswith("gate: closed") and reason in notes(state)[-1]


async def test_declined_once_never_again_and_off_means_off(
    retail_sqlite: SqliteStore, offline_resources: OfflineResources, products: ProductIndex
) -> None:
    engine, state = make_engine(retail_sqlite, offline_resources, products), DialogState()
    await talk(engine, state, NOAH_EMAIL, "thanks, that's all")
    assert state.suggested
    await talk(engine, state, "no thanks")
    assert state.suggestions_declined
    off, quiet = make_engine(retail_sqlite, offline_resources, products, on=False), DialogState()
    await talk(off, quiet, NOAH_EMAIL, "thanks, that's all")
    assert not quiet.suggested and "RECOMMENDATIONS=off" in notes(quiet)[-1]


async def test_sustained_frustration_is_offered_a_person_once(
    retail_sqlite: SqliteStore, offline_resources: OfflineResources, products: ProductIndex
) -> None:
    engine, state = make_engine(retail_sqlite, offline_resources, products), DialogState()
    replies = await talk(
        engine,
        state,
        "this is useless, my refund still hasn't come",
        "I'm fed up, nobody answers my emails",
        "this is unacceptable, I've waited weeks",
    )
    assert "Talk to a person" in replies[-1].suggested_actions and state.person_offered
    replies = await talk(engine, state, "still nothing, this is ridiculous")
    assert not any("Would you like me to pass you" in reply.text for reply in replies)


async def test_catalogue_questions_are_answered_by_meaning(
    retail_sqlite: SqliteStore, offline_resources: OfflineResources, products: ProductIndex
) -> None:
    engine = make_engine(retail_sqlite, offline_resources, products)
    replies = await talk(engine, DialogState(), "do you have anything for hiking?")
    text = replies[-1].text
    assert "Hiking Boots" in text and "in stock" in text and "from $" in text
    hits = await products.search("a kettle to boil water")
    assert hits[0].name in {"Electric Kettle", "Tea Kettle"}


async def test_product_text_is_derived_from_name_and_options(
    retail_sqlite: SqliteStore, products: ProductIndex
) -> None:
    product = await RetailService(retail_sqlite).get_product_details("2524789262")
    text = product_text(product)
    assert text.startswith(product["name"] + ".") and text == product_text(product)


async def test_product_vectors_are_cached_in_the_store(
    retail_sqlite: SqliteStore, offline_resources: OfflineResources
) -> None:
    first = ProductIndex(RetailService(retail_sqlite), offline_resources.classifier.embeddings, retail_sqlite)
    second = ProductIndex(
        RetailService(retail_sqlite), offline_resources.classifier.embeddings, retail_sqlite
    )
    embedded = await first.refresh()
    assert embedded == first.size == 50
    assert await second.refresh() == 0  # a restart reads them back instead of embedding


def test_the_gate_needs_recent_positive_sentiment() -> None:
    state = DialogState(verified_user_id=NOAH, sentiment=[0.6, -0.4, 0.7])
    assert not decide(state, enabled=True).open
    state.sentiment = [0.0, 0.3, 0.7]
    assert decide(state, enabled=True).open
