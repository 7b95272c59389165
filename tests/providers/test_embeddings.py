"""Concurrent conversations share the local model's forward passes, and get the vectors
they would have got alone."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import numpy as np
import pytest

from providers.embeddings import Vectors
from providers.embeddings.local import LocalEmbeddings
from shop.errors import EmbeddingsUnavailable


class CountingEmbeddings(LocalEmbeddings):
    """The batching and caching of `LocalEmbeddings` over a stand-in for the forward pass
    (a vector derived from the text), recording each pass's texts."""

    def __init__(self, *, fail_next: bool = False) -> None:
        super().__init__(isolated=False)
        self.passes: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()
        self.fail_next = fail_next

    def _encode(self, texts: list[str]) -> Vectors:
        self.release.wait(5)
        self.passes.append(list(texts))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the model is unwell")
        rows = [np.full(4, float(len(text)), dtype=np.float32) for text in texts]
        return np.stack(rows)


async def test_messages_arriving_during_a_pass_share_the_next_one() -> None:
    embeddings = CountingEmbeddings()
    embeddings.release.clear()  # the first pass is slow, as under load
    first = asyncio.create_task(embeddings.embed(["where is my order"]))
    await asyncio.sleep(0.05)
    others = [asyncio.create_task(embeddings.embed([f"message number {n}"])) for n in range(20)]
    await asyncio.sleep(0.05)
    embeddings.release.set()
    vectors = await asyncio.gather(first, *others)
    assert embeddings.passes[0] == ["where is my order"]
    assert len(embeddings.passes) == 2 and len(embeddings.passes[1]) == 20
    for n, got in enumerate(vectors[1:]):
        assert got.shape == (1, 4) and got[0][0] == len(f"message number {n}")


async def test_a_text_already_on_its_way_is_encoded_once() -> None:
    embeddings = CountingEmbeddings()
    embeddings.release.clear()
    waiting = [asyncio.create_task(embeddings.embed(["yes please"])) for _ in range(10)]
    await asyncio.sleep(0.05)
    embeddings.release.set()
    results = await asyncio.gather(*waiting)
    assert embeddings.passes == [["yes please"]]
    assert all(np.array_equal(r, results[0]) for r in results)
    await embeddings.embed(["yes please"])  # and afterwards it comes from the cache
    assert len(embeddings.passes) == 1


async def test_a_failed_pass_fails_its_callers_and_the_next_one_works() -> None:
    embeddings = CountingEmbeddings(fail_next=True)
    with pytest.raises(RuntimeError, match="unwell"):
        await embeddings.embed(["hello"])
    assert (await embeddings.embed(["hello"]))[0][0] == len("hello")


async def test_a_cancelled_turn_does_not_cancel_the_pass_others_wait_for() -> None:
    embeddings = CountingEmbeddings()
    embeddings.release.clear()
    cancelled = asyncio.create_task(embeddings.embed(["cancel my order"]))
    patient = asyncio.create_task(embeddings.embed(["cancel my order"]))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    embeddings.release.set()
    assert (await patient)[0][0] == len("cancel my order")
    with pytest.raises(asyncio.CancelledError):
        await cancelled


async def test_the_real_model_gives_the_same_vectors_batched_as_alone() -> None:
    texts = ["where is my parcel", "I want to return the kettle", "thanks, that's all", "cancel #W1234567"]
    model = LocalEmbeddings(threads=1)
    await asyncio.to_thread(model.load)
    together = await asyncio.gather(*(model.embed([t]) for t in texts))
    alone = [model._encode([t]) for t in texts]  # one forward pass per text, no batching
    for batched, single in zip(together, alone, strict=True):
        assert np.allclose(batched[0], single[0], atol=1e-5)
        assert abs(float(np.linalg.norm(batched[0])) - 1.0) < 1e-5


async def test_a_killed_model_process_fails_one_pass_and_the_next_starts_a_new_one() -> None:
    model = LocalEmbeddings(threads=1)
    try:
        await asyncio.to_thread(model.load)
        before = (await model.embed(["where is my parcel"]))[0]
        process = model._process
        assert process is not None
        for pid in list(process._processes):  # the model process, as an operator's kill -9 would
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(EmbeddingsUnavailable):
            for attempt in range(50):  # the pool notices the death within moments
                await model.embed([f"a new text {attempt}"])
                await asyncio.sleep(0.05)
        again = await model.embed(["where is my parcel", "a text after the restart"])
        assert np.allclose(again[0], before, atol=1e-5)  # from the cache
        assert abs(float(np.linalg.norm(again[1])) - 1.0) < 1e-5  # encoded by the new process
        assert model._process is not None and model._process is not process
    finally:
        await model.aclose()
