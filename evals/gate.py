"""The suggestion gate and the recommender, measured on the whole bot.

    report = await run_gate_eval(load_gate_set(), sentiment, resources, dataset_dir)
    audit = await audit_recommendations(store, embeddings, cache=store)

`run_gate_eval` plays every conversation of a labelled set (`gate/conversations.yaml`)
through the engine the bot uses (the offline engine inside `SupportEngine`, with the real
product index), each over a fresh copy of the dataset in a temporary SQLite store, and
records whether products were suggested. An unhappy customer (`unhappy`, `sarcastic`,
`polite_but_angry`) must never get any; `recall on happy` is how many happy customers did.

`audit_recommendations` computes the suggestions for every customer of the dataset and
checks them against the store itself, not against the recommender's own bookkeeping:
none may be a product the customer owns (an item of a non-cancelled order), and each must
have a variant available.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evals.labelled_sets import load_named
from shop.store.base import Collection

if TYPE_CHECKING:
    from dialogs import OfflineResources
    from dialogs.catalog import ProductHit
    from providers.embeddings import Embeddings
    from providers.sentiment import Sentiment
    from shop.store.base import OrderStore, StateStore
    from shop.store.sqlite import SqliteStore

GATE_SET = Path(__file__).resolve().parent / "gate" / "conversations.yaml"

Label = Literal["happy", "unhappy", "mixed", "sarcastic", "resolved_after_complaint", "polite_but_angry"]
LABELS: tuple[Label, ...] = (
    "happy",
    "mixed",
    "resolved_after_complaint",
    "unhappy",
    "sarcastic",
    "polite_but_angry",
)
# Customers who must never be offered products, whatever else happened.
UNHAPPY_LABELS: frozenset[str] = frozenset({"unhappy", "sarcastic", "polite_but_angry"})
# What a gate note in the transcript starts with (`dialogs.suggestions.GateDecision.note`).
_GATE_NOTE = "gate: "


class GateCase(BaseModel):
    """One labelled conversation: the customer's messages, in order."""

    model_config = ConfigDict(extra="forbid")

    name: str
    label: Label
    expect_suggestions: bool
    customer: str  # the user id the email in the first message belongs to
    channel: str = "webchat"
    messages: list[str] = Field(min_length=2)

    @model_validator(mode="after")
    def _consistent(self) -> GateCase:
        if self.label in UNHAPPY_LABELS and self.expect_suggestions:
            raise ValueError(f"a {self.label} customer must never expect suggestions")
        if self.label == "happy" and not self.expect_suggestions:
            raise ValueError("a happy customer expects suggestions")
        if any(not message.strip() for message in self.messages):
            raise ValueError("every message needs text")
        return self


def load_gate_set(path: Path = GATE_SET) -> list[GateCase]:
    return load_named(path, "conversations", GateCase, "conversation")


@dataclass(frozen=True)
class GateOutcome:
    case: GateCase
    suggested: bool
    verified: str | None
    decisions: list[tuple[int, str]]  # (customer message number from 1, the gate's note), in order
    sentiment: list[float]  # one score per customer message
    transcript: list[str]

    @property
    def leaked(self) -> bool:
        """An unhappy customer was offered products."""
        return self.suggested and self.case.label in UNHAPPY_LABELS

    @property
    def why(self) -> str:
        """The decision that suggested products, else the last one, else why there was none."""
        chosen = [d for d in self.decisions if d[1].startswith("gate: open") and "suggested" in d[1]]
        chosen = chosen or self.decisions[-1:]
        if not chosen:
            return "the gate never decided (no message read as a natural end)"
        number, note = chosen[0]
        return f"at message {number} ({self.case.messages[number - 1]!r}): {note}"


@dataclass(frozen=True)
class GateReport:
    outcomes: list[GateOutcome]
    sentiment: str  # which provider scored the messages
    seconds: float

    def confusion(self) -> dict[tuple[bool, bool], int]:
        """(expected, suggested) -> conversations."""
        counts = {(e, s): 0 for e in (True, False) for s in (True, False)}
        for outcome in self.outcomes:
            counts[(outcome.case.expect_suggestions, outcome.suggested)] += 1
        return counts

    def per_label(self) -> list[tuple[str, int, int]]:
        """(label, conversations, suggested), in LABELS order."""
        rows: list[tuple[str, int, int]] = []
        for label in LABELS:
            mine = [o for o in self.outcomes if o.case.label == label]
            if mine:
                rows.append((label, len(mine), sum(o.suggested for o in mine)))
        return rows

    @property
    def leaks(self) -> list[GateOutcome]:
        return [o for o in self.outcomes if o.leaked]

    @property
    def missed(self) -> list[GateOutcome]:
        """Happy customers who got no suggestions."""
        return [o for o in self.outcomes if o.case.label == "happy" and not o.suggested]

    @property
    def unverified(self) -> list[GateOutcome]:
        """Conversations where the bot did not verify the customer the set names (a set error)."""
        return [o for o in self.outcomes if o.verified != o.case.customer]

    @property
    def happy_recall(self) -> float | None:
        happy = [o for o in self.outcomes if o.case.label == "happy"]
        return sum(o.suggested for o in happy) / len(happy) if happy else None

    def lines(self, *, verbose: bool = False) -> list[str]:
        counts = self.confusion()
        out = [
            f"suggestion gate: {len(self.outcomes)} conversations, sentiment by {self.sentiment}, "
            f"{self.seconds:.1f}s",
            "",
            f"{'':<16}{'suggested':>10}{'not suggested':>15}",
            f"{'expected yes':<16}{counts[(True, True)]:>10}{counts[(True, False)]:>15}",
            f"{'expected no':<16}{counts[(False, True)]:>10}{counts[(False, False)]:>15}",
            "",
            f"{'label':<26}{'n':>4}{'suggested':>11}",
        ]
        out += [f"{label:<26}{n:>4}{suggested:>11}" for label, n, suggested in self.per_label()]
        out.append("")
        if self.leaks:
            out.append(f"UNHAPPY CUSTOMERS WHO GOT SUGGESTIONS ({len(self.leaks)}):")
            for outcome in self.leaks:
                out += _described(outcome, verbose=verbose)
        else:
            out.append("unhappy customers who got suggestions: none")
        wrong = [o for o in self.outcomes if not o.leaked and o.suggested and not o.case.expect_suggestions]
        if wrong:
            out.append(f"other conversations that should not have got suggestions ({len(wrong)}):")
            for outcome in wrong:
                out += _described(outcome, verbose=verbose)
        if self.missed:
            out.append(f"happy customers who got none ({len(self.missed)}):")
            for outcome in self.missed:
                out += _described(outcome, verbose=verbose)
        if self.unverified:
            out.append(f"WARNING: the customer was not verified as the set says in {len(self.unverified)}:")
            out += [
                f"  - {o.case.name}: expected {o.case.customer}, got {o.verified}" for o in self.unverified
            ]
        recall = self.happy_recall
        happy = sum(1 for o in self.outcomes if o.case.label == "happy")
        if recall is not None:
            out.append(f"recall on happy: {recall:.0%} ({round(recall * happy)}/{happy})")
        return out


def _described(outcome: GateOutcome, *, verbose: bool) -> list[str]:
    scores = ", ".join(f"{s:+.2f}" for s in outcome.sentiment)
    lines = [f"  - {outcome.case.name} ({outcome.case.label}): sentiment [{scores}]", f"      {outcome.why}"]
    if verbose:
        lines += [
            f"        {part}" for line in outcome.transcript for part in line.splitlines() if part.strip()
        ]
    return lines


async def run_gate_eval(
    cases: Sequence[GateCase],
    sentiment: Sentiment,
    resources: OfflineResources,
    dataset_dir: Path,
    *,
    template: Path | None = None,
) -> GateReport:
    """Plays every case through `SupportEngine` over the offline engine, each over a fresh
    copy of the dataset (`template`, an imported SQLite file, or one imported here)."""
    from shop.store.sqlite import SqliteStore

    started = time.perf_counter()
    outcomes: list[GateOutcome] = []
    with tempfile.TemporaryDirectory(prefix="aftercare-gate-") as folder:
        base = Path(folder) / "template.sqlite3"
        if template is not None:
            shutil.copyfile(template, base)
        else:
            await _import(base, dataset_dir)
        await _cache_product_vectors(base, resources)
        for index, case in enumerate(cases):
            path = Path(folder) / f"case-{index}.sqlite3"
            shutil.copyfile(base, path)
            store = await SqliteStore.open(path)
            try:
                outcomes.append(await _play(case, store, sentiment, resources))
            finally:
                await store.aclose()
                path.unlink(missing_ok=True)
    return GateReport(outcomes, sentiment.name, time.perf_counter() - started)


async def _import(path: Path, dataset_dir: Path) -> None:
    from shop.dataset import import_dataset
    from shop.store.sqlite import SqliteStore

    store = await SqliteStore.open(path)
    try:
        await import_dataset(store, dataset_dir, progress=False)
    finally:
        await store.aclose()


async def _cache_product_vectors(path: Path, resources: OfflineResources) -> None:
    """Embeds the catalogue once into the template's state, so each copy reads it back."""
    from dialogs.catalog import ProductIndex
    from shop.retail import RetailService
    from shop.store.sqlite import SqliteStore

    store = await SqliteStore.open(path)
    try:
        await ProductIndex(RetailService(store), resources.classifier.embeddings, store).refresh()
    finally:
        await store.aclose()


async def _play(
    case: GateCase, store: SqliteStore, sentiment: Sentiment, resources: OfflineResources
) -> GateOutcome:
    from dialogs import build_offline_engine
    from dialogs.catalog import ProductIndex
    from dialogs.engine import SupportEngine
    from dialogs.suggestions import Recommender
    from dialogs.turn import Channel, DialogState
    from shop.retail import RetailService

    retail = RetailService(store)
    products = ProductIndex(retail, resources.classifier.embeddings, store)
    await products.refresh()
    engine = SupportEngine(
        build_offline_engine(retail, resources, products), sentiment, Recommender(retail, products)
    )
    state, channel = DialogState(), Channel(id=case.channel)
    transcript: list[str] = []
    decisions: list[tuple[int, str]] = []
    for number, message in enumerate(case.messages, start=1):
        seen = len(state.transcript)
        replies = await engine.respond(message, None, state, channel)
        score = state.sentiment[-1] if len(state.sentiment) == number else None
        transcript.append(f"user: {message}" + (f"  [sentiment {score:+.2f}]" if score is not None else ""))
        transcript += [f"bot: {reply.text}" for reply in replies]
        # What this turn added (the transcript keeps 200 entries; a case is a few turns).
        notes = [
            e.text for e in state.transcript[seen:] if e.role == "note" and e.text.startswith(_GATE_NOTE)
        ]
        decisions += [(number, note) for note in notes]
        transcript += [f"note: {note}" for note in notes]
    return GateOutcome(
        case=case,
        suggested=state.suggested,
        verified=state.verified_user_id,
        decisions=decisions,
        sentiment=list(state.sentiment),
        transcript=transcript,
    )


# ------------------------------------------------------------------ recommendations


@dataclass(frozen=True)
class CustomerSuggestions:
    user_id: str
    history: list[str]  # names of the products they own, in order of purchase
    suggestions: list[ProductHit]
    owned: list[str] = field(default_factory=list)  # suggested products they own: violations
    unavailable: list[str] = field(default_factory=list)  # suggested with no variant available


@dataclass(frozen=True)
class RecommendationAudit:
    customers: list[CustomerSuggestions]
    products: int  # in the index
    seconds: float

    @property
    def violations(self) -> list[CustomerSuggestions]:
        return [c for c in self.customers if c.owned or c.unavailable]

    def sample(self, n: int) -> list[CustomerSuggestions]:
        """n customers with a purchase history, spread evenly over the dataset's order."""
        with_history = [c for c in self.customers if c.history]
        if n <= 0 or not with_history:
            return []
        step = max(1, len(with_history) // n)
        return with_history[::step][:n]

    def lines(self, *, sample: int) -> list[str]:
        out: list[str] = []
        for customer in self.sample(sample):
            out.append(f"{customer.user_id}")
            out.append(f"  bought:    {', '.join(customer.history)}")
            names = ", ".join(f"{h.name} ({h.score:.2f})" for h in customer.suggestions) or "(none)"
            out.append(f"  suggested: {names}")
        if out:
            out.append("")
        for customer in self.violations:
            if customer.owned:
                out.append(f"VIOLATION {customer.user_id}: suggested products they own: {customer.owned}")
            if customer.unavailable:
                out.append(
                    f"VIOLATION {customer.user_id}: suggested products with nothing available: "
                    f"{customer.unavailable}"
                )
        total = len(self.customers)
        with_history = sum(1 for c in self.customers if c.history)
        got = [c for c in self.customers if c.suggestions]
        suggested = [h.product_id for c in self.customers for h in c.suggestions]
        short = sum(1 for c in got if len(c.suggestions) < 3)
        out += [
            f"customers: {total} ({with_history} with a purchase history, "
            f"{total - with_history} without, no orders or only cancelled ones: nothing to suggest from)",
            f"customers with suggestions: {len(got)}; fewer than 3: {short}",
            f"suggestions: {len(suggested)}, {len(set(suggested))} distinct products of {self.products}",
            f"suggested products they own: {sum(len(c.owned) for c in self.customers)}",
            f"suggested products with nothing available: {sum(len(c.unavailable) for c in self.customers)}",
            f"customers with a violation: {len(self.violations)}  ({self.seconds:.1f}s)",
        ]
        return out


async def audit_recommendations(
    store: OrderStore, embeddings: Embeddings, cache: StateStore | None = None
) -> RecommendationAudit:
    """`Recommender.for_customer` for every customer in `store`, checked against the store;
    `cache` keeps the product vectors (as in the app)."""
    from dialogs.catalog import ProductIndex
    from dialogs.suggestions import Recommender
    from shop.retail import RetailService

    started = time.perf_counter()
    retail = RetailService(store)
    index = ProductIndex(retail, embeddings, cache)
    await index.refresh()
    recommender = Recommender(retail, index)
    available = {
        key: any(v.get("available") for v in doc.get("variants", {}).values())
        async for key, doc in store.iter_records(Collection.PRODUCTS)
    }
    customers: list[CustomerSuggestions] = []
    async for user_id, customer in store.iter_records(Collection.CUSTOMERS):
        owned: dict[str, str] = {}  # product id -> name, first purchase first
        for order_id in customer.get("orders", []):
            record = await store.get_order(order_id)
            if record is None or record.doc.get("status") == "cancelled":
                continue
            for item in record.doc.get("items", []):
                owned.setdefault(item["product_id"], item["name"])
        hits = await recommender.for_customer(user_id)
        customers.append(
            CustomerSuggestions(
                user_id=user_id,
                history=list(owned.values()),
                suggestions=hits,
                owned=[h.product_id for h in hits if h.product_id in owned],
                unavailable=[h.product_id for h in hits if not available.get(h.product_id, False)],
            )
        )
    return RecommendationAudit(customers, index.size, time.perf_counter() - started)
