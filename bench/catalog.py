"""The catalogue's costs: vector search over a large catalogue, embedding a catalogue with
the local model, and sentiment scoring per customer message.

1. Top-3 search over synthetic products (`dialogs.catalog.top_k`): N unit vectors of 384
   dimensions (float32, seeded), clustered around 500 random centres so the scores are not
   uniform noise, and 1,000 random unit queries, each timed alone: p50 / p95 / p99 ms
   without a mask, and with an `allowed` mask that leaves out 10% of the rows (as `near()`
   passes it). Then `ProductIndex.near()` end to end over the same N products (two
   variants each, 10% with none in stock), which also builds the mask from the products
   on every call. Prints the matrix's memory.
2. Embedding throughput of the local model (`LocalEmbeddings`, all-MiniLM-L6-v2 in its own
   process, the app's thread count): 2,000 distinct synthetic product texts in
   `product_text`'s shape ("Rugged Backpack. color: black, green; size: L, M"), embedded in
   one `embed` call as `ProductIndex.refresh()` passes them (after `start()`, so the model is
   loaded); then the shipped catalogue's 50 products (`shop/data/retail/products.json`).
3. Sentiment per customer message: `LocalSentiment().score_now` (VADER and the shop's rules,
   what every turn runs on the local default) over 10,000 varied short messages: mean, p50
   and p99 microseconds.

Run: `.venv/bin/python -m bench.catalog [--products 100000] [--queries 1000] [--texts 2000]
[--messages 10000]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dialogs.catalog import ProductIndex, product_text, top_k
from providers.embeddings.base import Vectors
from providers.embeddings.local import LocalEmbeddings
from providers.sentiment.local import LocalSentiment
from shop.dataset import SHIPPED_DATASET_DIR
from shop.models import Product
from shop.retail import RetailService

DIMENSIONS = 384
CENTRES = 500
SEED = 20261202

ADJECTIVES = (
    "Rugged", "Classic", "Compact", "Deluxe", "Ergonomic", "Foldable", "Heavy-Duty", "Insulated",
    "Lightweight", "Modern", "Organic", "Portable", "Premium", "Quiet", "Rechargeable", "Slim",
    "Smart", "Sturdy", "Vintage", "Waterproof", "Wireless", "Adjustable", "Breathable", "Cordless",
    "Durable", "Eco", "Handmade", "Indoor", "Outdoor", "Padded", "Reversible", "Stackable",
    "Travel", "Ultra", "Washable", "Wooden", "Woven", "Digital", "Magnetic", "Minimalist",
)  # fmt: skip
NOUNS = (
    "Backpack", "Blender", "Bookshelf", "Candle", "Chair", "Coffee Maker", "Desk Lamp", "Drone",
    "Dumbbell", "E-Reader", "Fleece Jacket", "Garden Hose", "Gaming Mouse", "Headphones", "Hiking Boots",
    "Jigsaw Puzzle", "Kettle", "Keyboard", "Laptop Stand", "Luggage Set", "Mattress", "Mirror",
    "Notebook", "Office Chair", "Pet Bed", "Picnic Blanket", "Pillow", "Running Shoes", "Scarf",
    "Skateboard", "Sleeping Bag", "Smartwatch", "Sneakers", "Speaker", "Sunglasses", "T-Shirt",
    "Tablet", "Tea Set", "Tent", "Toaster", "Umbrella", "Vacuum Cleaner", "Wall Clock", "Wallet",
    "Water Bottle", "Yoga Mat", "Action Camera", "Bicycle", "Bluetooth Tracker", "Cutting Board",
)  # fmt: skip
OPTIONS: dict[str, tuple[str, ...]] = {
    "color": ("black", "white", "blue", "red", "green", "grey", "navy", "beige", "brown", "purple"),
    "size": ("XS", "S", "M", "L", "XL", "XXL", "small", "medium", "large"),
    "material": ("cotton", "polyester", "leather", "wood", "steel", "aluminium", "glass", "bamboo"),
    "capacity": ("500ml", "750ml", "1L", "1.5L", "2L", "20L", "30L", "40L"),
    "style": ("crew neck", "v-neck", "hooded", "zip", "slip-on", "lace-up"),
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def unit_rows(matrix: np.ndarray) -> Vectors:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def synthetic_matrix(products: int, rng: np.random.Generator) -> Vectors:
    """`products` unit vectors clustered around CENTRES random unit centres."""
    centres = unit_rows(rng.standard_normal((CENTRES, DIMENSIONS), dtype=np.float32))
    members = rng.integers(0, CENTRES, products)
    # Noise of norm about 0.6 around a unit centre: rows of one cluster score ~0.7 with
    # each other and ~0 with the rest, like products of one kind against the others.
    noise = rng.standard_normal((products, DIMENSIONS), dtype=np.float32) * (0.6 / DIMENSIONS**0.5)
    return unit_rows(centres[members] + noise)


def synthetic_product(index: int, rng: random.Random, *, in_stock: bool = True) -> Product:
    """A product in the dataset's shape: a name and variants with options."""
    name = f"{ADJECTIVES[index % len(ADJECTIVES)]} {NOUNS[(index // len(ADJECTIVES)) % len(NOUNS)]}"
    if index >= len(ADJECTIVES) * len(NOUNS):
        name += f" {index // (len(ADJECTIVES) * len(NOUNS)) + 1}"
    keys = rng.sample(sorted(OPTIONS), rng.randint(1, 3))
    variants = {}
    for v in range(rng.randint(2, 4)):
        item_id = f"{index:07d}{v:03d}"
        variants[item_id] = {
            "item_id": item_id,
            "options": {key: rng.choice(OPTIONS[key]) for key in keys},
            "available": in_stock and (v > 0 or rng.random() < 0.5),
            "price": round(rng.uniform(5, 500), 2),
        }
    return cast(Product, {"name": name, "product_id": f"p{index:07d}", "variants": variants})


def print_latencies(label: str, samples_ms: list[float]) -> None:
    print(
        f"  {label:<44} p50 {percentile(samples_ms, 0.5):7.3f}  p95 {percentile(samples_ms, 0.95):7.3f}"
        f"  p99 {percentile(samples_ms, 0.99):7.3f} ms  (n={len(samples_ms)})"
    )


class _SyntheticRetail:
    """The two calls `ProductIndex.refresh()` makes, over products held in memory."""

    def __init__(self, products: list[Product]) -> None:
        self._products = {p["product_id"]: p for p in products}

    async def list_all_product_types(self) -> dict[str, str]:
        return {p["name"]: pid for pid, p in self._products.items()}

    async def get_product_details(self, product_id: str) -> Product:
        return self._products[product_id]


class _PrecomputedEmbeddings:
    """Hands back the synthetic matrix's rows for the products' texts (no model)."""

    def __init__(self, texts: list[str], matrix: Vectors) -> None:
        self._rows = {text: i for i, text in enumerate(texts)}
        self._matrix = matrix

    @property
    def name(self) -> str:
        return "synthetic"

    async def start(self) -> None:
        return None

    async def embed(self, texts: list[str]) -> Vectors:
        return self._matrix[[self._rows[t] for t in texts]]

    async def aclose(self) -> None:
        return None


def bench_search(products: int, queries: int) -> None:
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    matrix = synthetic_matrix(products, rng)
    built_s = time.perf_counter() - started
    query_rows = unit_rows(rng.standard_normal((queries, DIMENSIONS), dtype=np.float32))
    allowed = rng.random(products) >= 0.10
    print(
        f"1. top-3 over {products:,} synthetic products, {DIMENSIONS} dims, {CENTRES} clusters "
        f"(built in {built_s:.2f} s)"
    )
    rows, columns = matrix.shape
    print(f"  matrix: {matrix.nbytes / 2**20:.1f} MiB ({matrix.dtype}, {rows:,} x {columns})")
    for q in query_rows[:20]:  # warm-up: BLAS threads, page faults
        top_k(matrix, q, 3)
        top_k(matrix, q, 3, allowed)
    for label, mask in (("top_k(matrix, query, 3)", None), ("top_k(..., allowed) 10% excluded", allowed)):
        samples = []
        for q in query_rows:
            t0 = time.perf_counter()
            top_k(matrix, q, 3, mask)
            samples.append((time.perf_counter() - t0) * 1000)
        print_latencies(label, samples)
    print(f"  excluded rows: {int((~allowed).sum()):,}")
    asyncio.run(bench_near(products, matrix, queries))


async def bench_near(products: int, matrix: Vectors, queries: int) -> None:
    """`ProductIndex.near()` as the suggestion gate calls it, over `products` synthetic products."""
    rng = random.Random(SEED)
    catalogue = [synthetic_product(i, rng, in_stock=rng.random() >= 0.10) for i in range(products)]
    texts = [product_text(p) for p in catalogue]
    # Distinct names (so the catalogue listing keeps every product) and distinct texts.
    assert len({p["name"] for p in catalogue}) == products and len(set(texts)) == products
    index = ProductIndex(
        cast(RetailService, _SyntheticRetail(catalogue)), cast(Any, _PrecomputedEmbeddings(texts, matrix))
    )
    started = time.perf_counter()
    await index.refresh()
    refresh_s = time.perf_counter() - started
    calls = min(queries, 200)
    owned_sets = [[catalogue[rng.randrange(products)]["product_id"] for _ in range(2)] for _ in range(calls)]
    for owned in owned_sets[:5]:
        index.near(owned, 3, exclude=set(owned))
    samples = []
    for owned in owned_sets:
        t0 = time.perf_counter()
        index.near(owned, 3, exclude=set(owned))
        samples.append((time.perf_counter() - t0) * 1000)
    print_latencies("ProductIndex.near(2 owned, k=3), end to end", samples)
    print(f"  (ProductIndex.refresh() over them, no model and no cache: {refresh_s:.2f} s)")


async def bench_embeddings(texts_wanted: int) -> None:
    rng = random.Random(SEED)
    texts = [product_text(synthetic_product(i, rng)) for i in range(texts_wanted)]
    assert len(set(texts)) == len(texts)
    shipped = json.loads((SHIPPED_DATASET_DIR / "products.json").read_text(encoding="utf-8"))
    real_texts = [product_text(cast(Product, p)) for p in shipped.values()]
    threads = max(1, (os.cpu_count() or 1) - 1)  # the app's default (EMBEDDING_THREADS=0)
    model = LocalEmbeddings(threads=threads)
    print(f"2. local embeddings (all-MiniLM-L6-v2 in its own process, {threads} torch thread(s), batch 64)")
    try:
        started = time.perf_counter()
        await model.start()
        print(f"  start() (spawn the process, load the model): {time.perf_counter() - started:.2f} s")
        mean_chars = statistics.mean(len(t) for t in texts)
        print(f"  e.g. {texts[0]!r}; {mean_chars:.0f} characters on average")
        started = time.perf_counter()
        vectors = await model.embed(texts)
        seconds = time.perf_counter() - started
        print(
            f"  {len(texts):,} synthetic product texts in one embed(): {seconds:.2f} s, "
            f"{len(texts) / seconds:.0f} texts/s ({seconds / len(texts) * 1000:.2f} ms a text)"
        )
        assert vectors.shape == (len(texts), DIMENSIONS)
        started = time.perf_counter()
        vectors = await model.embed(real_texts)
        seconds = time.perf_counter() - started
        print(
            f"  the shipped catalogue's {len(real_texts)} products: {seconds * 1000:.0f} ms "
            f"({len(real_texts) / seconds:.0f} texts/s)"
        )
        assert vectors.shape == (len(real_texts), DIMENSIONS)
    finally:
        await model.aclose()


_MESSAGES = (
    "Hi, where is my order {order}?",
    "Thanks {first}, that's all",
    "My parcel is {days} days late, this is ridiculous",
    "oh great, another delay. just perfect.",
    "Can I return the {item} I bought last week?",
    "The {item} arrived broken, I want a refund",
    "Still waiting for my refund for {order}!!",
    "Thank you so much, you've been really helpful :)",
    "I love the {item}, do you have it in {color}?",
    "How long does shipping take to {city}?",
    "Wrong size again. Third time this happens.",
    "Can I change the address on {order} to {city}?",
    "nobody answered my email about {order}",
    "Perfect, thanks a lot!",
    "What is your return policy for {item}s?",
    "I was charged twice for {order}, please fix this",
    "Great service, the {item} came a day early",
    "yeah right, 'two days'. It's been {days}.",
    "Please cancel {order}, I don't need it anymore",
    "ok",
)
_WORDS = {
    "item": ("backpack", "kettle", "t-shirt", "smartwatch", "tent", "yoga mat", "office chair", "speaker"),
    "color": ("black", "blue", "green", "red"),
    "city": ("Leeds", "Austin", "Lyon", "Denver", "Porto"),
    "first": ("Yusuf", "Mia", "Anya", "Omar", "Ethan", "Lucas"),
}


def customer_messages(count: int) -> list[str]:
    rng = random.Random(SEED)
    messages = []
    for _ in range(count):
        fields = {key: rng.choice(values) for key, values in _WORDS.items()}
        fields.update(order=f"#W{rng.randrange(10**6, 10**7)}", days=str(rng.randint(2, 21)))
        messages.append(rng.choice(_MESSAGES).format(**fields))
    return messages


def bench_sentiment(count: int) -> None:
    messages = customer_messages(count)
    started = time.perf_counter()
    sentiment = LocalSentiment()
    load_ms = (time.perf_counter() - started) * 1000
    for text in messages[:200]:  # warm-up
        sentiment.score_now(text)
    samples = []
    for text in messages:
        t0 = time.perf_counter()
        sentiment.score_now(text)
        samples.append((time.perf_counter() - t0) * 1e6)
    print(
        f"3. LocalSentiment().score_now over {count:,} messages ({len(set(messages)):,} distinct; "
        f"{statistics.mean(len(m) for m in messages):.0f} characters on average; "
        f"constructed in {load_ms:.0f} ms)"
    )
    print(
        f"  mean {statistics.mean(samples):6.1f}  p50 {percentile(samples, 0.5):6.1f}  "
        f"p99 {percentile(samples, 0.99):6.1f}  max {max(samples):7.1f} µs per message"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, NumPy {np.__version__}")
    bench_search(args.products, args.queries)
    asyncio.run(bench_embeddings(args.texts))
    bench_sentiment(args.messages)


if __name__ == "__main__":
    main()
