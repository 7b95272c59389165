"""The suggestion gate on the labelled set (evals/gate/conversations.yaml, the one `aftercare
eval gate` runs) through the whole engine, with the local scorer and with a chat model;
and the recommender checked for every customer of the dataset."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from dialogs import OfflineResources
from evals.gate import (
    GATE_SET,
    UNHAPPY_LABELS,
    GateReport,
    audit_recommendations,
    load_gate_set,
    run_gate_eval,
)
from providers.factory import build_chat_model
from providers.sentiment.chat_model import ChatModelSentiment
from providers.sentiment.local import LocalSentiment
from shop.store.base import Collection
from shop.store.sqlite import SqliteStore
from tests.support.scripted_openai import ScriptedOpenAI

CASES = load_gate_set()
MIN_HAPPY_RECALL = 0.8


def leaks(report: GateReport) -> str:
    return "\n".join(report.lines(verbose=True))


def test_the_set_is_labelled_and_sized() -> None:
    assert GATE_SET.is_file() and len(CASES) >= 80
    labels = {case.label for case in CASES}
    assert labels == {
        "happy",
        "unhappy",
        "mixed",
        "sarcastic",
        "resolved_after_complaint",
        "polite_but_angry",
    }
    assert all(3 <= len(case.messages) <= 6 for case in CASES)
    assert not any(case.expect_suggestions for case in CASES if case.label in UNHAPPY_LABELS)
    assert len({case.customer for case in CASES}) >= 60  # many different customers


@pytest.mark.timeout(300)
async def test_local_sentiment_never_suggests_to_an_unhappy_customer(
    offline_resources: OfflineResources, sqlite_template: Path, dataset_dir: Path
) -> None:
    report = await run_gate_eval(
        CASES, LocalSentiment(), offline_resources, dataset_dir, template=sqlite_template
    )
    assert not report.unverified, leaks(report)  # every case is about the customer it names
    assert not report.leaks, leaks(report)
    recall = report.happy_recall
    assert recall is not None and recall >= MIN_HAPPY_RECALL, leaks(report)


# The stand-in chat model's own reading of a message: nothing shared with the local scorer.
_PROBLEMS = re.compile(
    r"\b(late|delay\w*|still|pending|waiting|waited|stuck|forever|lost|missing|broken|broke|crack\w*|"
    r"dent\w*|damaged|defective|leak\w*|scratch\w*|crush\w*|wrong|charged|never|nobody|nothing|hasn'?t|"
    r"haven'?t|doesn'?t|didn'?t|won'?t|stopped|junk|worst|terrible|useless|ridiculous|unacceptable|"
    r"angry|annoy\w*|frustrat\w*|disappoint\w*|upset\w*|disgusted|letdown|rope|complain|sick of|"
    r"whatever|ugh|forget it|elsewhere|again|third time|second time)\b",
    re.I,
)
_SARCASM = re.compile(
    r"thanks for nothing|thanks a lot|so helpful|super useful|huge help|love that for me|world class|"
    r"yeah,? sure|oh,? sure|yeah,? right|i guess|impressive|shocking|great chat|🙄|"
    r"really fast|cool cool",
    re.I,
)
_PRAISE = re.compile(
    r"\b(thanks?|thank you|thx|cheers|great|perfect|love|amazing|awesome|brilliant|brill|lovely|nice|"
    r"cool|excellent|fantastic|wonderful|gorgeous|helpful|sweet|yay|glad|appreciate|beautiful|good)\b|"
    r"😊|👍|🐶",
    re.I,
)


def judge(text: str) -> float:
    if _SARCASM.search(text):
        return -0.6
    if _PROBLEMS.search(text):
        return -0.5  # polite words around a problem are still a problem
    praise = len(_PRAISE.findall(text))
    return min(0.9, 0.3 + 0.2 * praise) if praise else 0.0


def sentiment_judge(request: dict[str, Any]) -> dict[str, Any]:
    last = str(request["messages"][-1]["content"]).split("Last message:\n", 1)[-1]
    return {"text": json.dumps({"score": judge(last)})}


@pytest.mark.timeout(300)
async def test_chat_model_sentiment_never_suggests_to_an_unhappy_customer(
    offline_resources: OfflineResources,
    sqlite_template: Path,
    dataset_dir: Path,
    scripted: ScriptedOpenAI,
    make_settings: Callable[..., Settings],
) -> None:
    scripted.responder = sentiment_judge
    model = build_chat_model(
        make_settings(LLM_PROVIDER="openai", OPENAI_BASE_URL=f"{scripted.base_url}/v1", OPENAI_API_KEY="k")
    )
    assert model is not None
    sentiment = ChatModelSentiment(model, LocalSentiment(), timeout_s=30.0)  # a busy CI machine is slow
    try:
        report = await run_gate_eval(
            CASES, sentiment, offline_resources, dataset_dir, template=sqlite_template
        )
    finally:
        await model.aclose()
    # Every message was scored by the chat model, none by the fallback.
    assert len(scripted.requests) == sum(len(case.messages) for case in CASES)
    for outcome in report.outcomes:
        assert outcome.sentiment == [round(judge(m), 3) for m in outcome.case.messages], outcome.case.name
    assert not report.unverified, leaks(report)
    assert not report.leaks, leaks(report)


@pytest.mark.timeout(300)
async def test_no_customer_is_suggested_a_product_they_own_or_cannot_buy(
    retail_sqlite: SqliteStore, offline_resources: OfflineResources
) -> None:
    embeddings = offline_resources.classifier.embeddings
    before = await audit_recommendations(retail_sqlite, embeddings, retail_sqlite)
    # Every product of the shipped dataset has a variant in stock: take the two products
    # suggested most often out of stock, so the availability check has something to catch.
    counts: dict[str, int] = {}
    for customer in before.customers:
        for hit in customer.suggestions:
            counts[hit.product_id] = counts.get(hit.product_id, 0) + 1
    sold_out = sorted(counts, key=lambda pid: -counts[pid])[:2]
    for product_id in sold_out:
        record = await retail_sqlite.get_product(product_id)
        assert record is not None
        for variant in record.doc["variants"].values():
            variant["available"] = False
        await retail_sqlite.put_product(product_id, record.doc)

    audit = await audit_recommendations(retail_sqlite, embeddings, retail_sqlite)
    customers = [key async for key, _ in retail_sqlite.iter_records(Collection.CUSTOMERS)]
    assert [c.user_id for c in audit.customers] == customers and len(customers) == 500
    assert not audit.violations, "\n".join(audit.lines(sample=0))
    suggested = {hit.product_id for c in audit.customers for hit in c.suggestions}
    assert not suggested & set(sold_out)
    with_history = [c for c in audit.customers if c.history]
    assert with_history and all(len(c.suggestions) == 3 for c in with_history)
    assert all(not c.suggestions for c in audit.customers if not c.history)
