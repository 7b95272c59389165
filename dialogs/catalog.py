"""The catalogue as vectors: product search for customers' questions, and the products
nearest to what a customer bought, for recommendations.

The dataset has no product descriptions, so each product's text is derived, the same
way every time, from its name and its variants' options ("Hiking Backpack. color: black,
green; size: large, small"). Texts are embedded once and their vectors cached in the
state store by model and text hash, so a restart does not embed the catalogue again; a
product whose options change gets a new text, and only it is embedded again.

The index is exact: one normalised NumPy matrix, scored with a matrix-vector product and
`argpartition` for the top k. For the shipped 50 products that is microseconds; for
100,000 products of 384 dimensions (147 MiB) it is about 7 ms on two cores, bound by
reading the matrix once per query (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from providers.embeddings import Embeddings, Vectors
from shop.errors import AftercareError
from shop.models import Product
from shop.retail import RetailService
from shop.rules import money
from shop.store.base import StateStore

log = logging.getLogger(__name__)

# A search result below this cosine similarity is not about the product at all.
MIN_SEARCH_SCORE = 0.3
# Product texts per embedding call when the catalogue is (re-)embedded.
EMBED_BATCH = 64


def product_text(product: Product) -> str:
    """The product in words: its name, then each option with its values, sorted."""
    options: dict[str, set[str]] = {}
    for variant in product["variants"].values():
        for key, value in variant["options"].items():
            options.setdefault(key, set()).add(str(value))
    described = "; ".join(f"{key}: {', '.join(sorted(values))}" for key, values in sorted(options.items()))
    return f"{product['name']}. {described}" if described else product["name"]


@dataclass(frozen=True)
class ProductHit:
    product_id: str
    name: str
    score: float
    in_stock: int  # available variants
    variants: int
    price_from: Decimal | None  # the cheapest available variant
    price_to: Decimal | None

    def as_dict(self) -> dict[str, object]:
        return {
            "product_id": self.product_id,
            "name": self.name,
            "variants_in_stock": self.in_stock,
            "variants": self.variants,
            "price_from": str(self.price_from) if self.price_from is not None else None,
            "price_to": str(self.price_to) if self.price_to is not None else None,
        }


def top_k(
    matrix: Vectors, query: Vectors, k: int, allowed: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """(row, score) of the k rows most similar to `query` (rows and query unit vectors),
    best first; rows where `allowed` is False are left out."""
    if matrix.shape[0] == 0 or k <= 0:
        return []
    scores = matrix @ query
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    k = min(k, scores.shape[0])
    best = np.argpartition(-scores, k - 1)[:k]
    ordered = best[np.argsort(-scores[best])]
    return [(int(row), float(scores[row])) for row in ordered if np.isfinite(scores[row])]


class ProductIndex:
    def __init__(
        self, retail: RetailService, embeddings: Embeddings, cache: StateStore | None = None
    ) -> None:
        self._retail = retail
        self._embeddings = embeddings
        self._cache = cache
        self._products: list[Product] = []
        self._matrix: Vectors = np.zeros((0, 0), dtype=np.float32)
        self._texts: list[str] = []
        # Built once per refresh, not per query: product id -> row, and rows in stock.
        self._rows: dict[str, int] = {}
        self._in_stock: np.ndarray = np.zeros(0, dtype=bool)
        self._lock = asyncio.Lock()

    @property
    def size(self) -> int:
        return len(self._products)

    async def refresh(self) -> int:
        """Reads the catalogue again; embeds only texts not seen before. Returns how many
        texts were embedded (0 when nothing changed)."""
        async with self._lock:
            catalogue = await self._retail.list_all_product_types()
            products = list(
                await asyncio.gather(*(self._retail.get_product_details(pid) for pid in catalogue.values()))
            )
            texts = [product_text(product) for product in products]
            vectors, embedded = await self._vectors(texts)
            self._products, self._texts, self._matrix = products, texts, vectors
            self._rows = {product["product_id"]: row for row, product in enumerate(products)}
            self._in_stock = np.array(
                [any(v.get("available") for v in product["variants"].values()) for product in products],
                dtype=bool,
            )
            return embedded

    async def search(self, query: str, k: int = 3) -> list[ProductHit]:
        """The products that best match the customer's words, best first."""
        if not self._products or not query.strip():
            return []
        vector = (await self._embeddings.embed([query]))[0]
        hits = [self._hit(row, score) for row, score in top_k(self._matrix, vector, k)]
        return [hit for hit in hits if hit.score >= MIN_SEARCH_SCORE]

    def near(
        self, product_ids: Sequence[str], k: int = 3, *, exclude: set[str] | None = None
    ) -> list[ProductHit]:
        """Available products nearest to the given ones (the mean of their vectors), never
        one of `exclude` and never one with no variant in stock."""
        chosen = [self._rows[pid] for pid in product_ids if pid in self._rows]
        if not chosen:
            return []
        centre = self._matrix[chosen].mean(axis=0)
        norm = float(np.linalg.norm(centre))
        if norm == 0:
            return []
        allowed = self._in_stock.copy()
        for product_id in exclude or ():
            row = self._rows.get(product_id)
            if row is not None:
                allowed[row] = False
        return [self._hit(row, score) for row, score in top_k(self._matrix, centre / norm, k, allowed)]

    def _hit(self, row: int, score: float) -> ProductHit:
        product = self._products[row]
        variants = list(product["variants"].values())
        prices = sorted(money(v["price"]) for v in variants if v.get("available"))
        return ProductHit(
            product_id=product["product_id"],
            name=product["name"],
            score=round(score, 4),
            in_stock=len(prices),
            variants=len(variants),
            price_from=prices[0] if prices else None,
            price_to=prices[-1] if prices else None,
        )

    async def _vectors(self, texts: list[str]) -> tuple[Vectors, int]:
        keys = [
            f"vectors/{_slug(self._embeddings.name)}/{hashlib.sha256(t.encode()).hexdigest()[:40]}"
            for t in texts
        ]
        found: dict[int, Vectors] = {}
        if self._cache is not None:
            stored = await asyncio.gather(*(self._cache.read_state(key) for key in keys))
            for i, doc in enumerate(stored):
                if doc is not None and doc.doc.get("text") == texts[i]:
                    found[i] = np.asarray(doc.doc["vector"], dtype=np.float32)
        missing = [i for i in range(len(texts)) if i not in found]
        fresh_rows: list[Vectors] = []
        for start in range(0, len(missing), EMBED_BATCH):
            # In batches, so customers' messages are embedded between them, not after all.
            batch = missing[start : start + EMBED_BATCH]
            fresh_rows.extend(await self._embeddings.embed([texts[i] for i in batch]))
        if missing:
            for i, vector in zip(missing, fresh_rows, strict=True):
                found[i] = vector
                if self._cache is not None:
                    try:
                        await self._cache.write_state(keys[i], {"text": texts[i], "vector": vector.tolist()})
                    except AftercareError as exc:  # the cache is an optimisation only
                        log.warning("could not cache a product vector: %s", exc)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), 0
        return np.stack([found[i] for i in range(len(texts))]).astype(np.float32), len(missing)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
