"""Embeddings from Azure OpenAI (`text-embedding-3-small` in production) or any
OpenAI-compatible `/embeddings` endpoint, through the `openai` SDK.

Texts go in batches (the API takes up to 2,048 inputs a request; 256 keeps a request
small); vectors come back in input order and are L2-normalised here, since the protocol
promises unit vectors whatever the model returns. A repeated text is served from a
bounded cache, as the intent examples and policy passages are embedded at every start.
Failures become `EmbeddingsUnavailable`, with a bounded retry on throttling and 5xx.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from providers.embeddings.base import Vectors
from shop.errors import EmbeddingsUnavailable

log = logging.getLogger(__name__)

_BATCH = 256
_CACHE_SIZE = 4096
_ATTEMPTS = 3


class OpenAIEmbeddings:
    """An `Embeddings` over an `openai.AsyncOpenAI` or `AsyncAzureOpenAI` client."""

    def __init__(self, client: Any, model: str, *, name: str, timeout_s: float = 15.0) -> None:
        self._client = client
        self._model = model
        self._name = name
        self._timeout_s = timeout_s
        self._cache: OrderedDict[str, Vectors] = OrderedDict()

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        """Nothing to load: the endpoint is asked on the first texts."""

    async def embed(self, texts: Sequence[str]) -> Vectors:
        found = {text: self._cache[text] for text in texts if text in self._cache}
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        for start in range(0, len(missing), _BATCH):
            batch = missing[start : start + _BATCH]
            found.update(zip(batch, await self._request(batch), strict=True))
        for text in missing:
            self._cache[text] = found[text]
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[text] for text in texts])

    async def _request(self, batch: list[str]) -> list[Vectors]:
        import openai

        for attempt in range(_ATTEMPTS):
            try:
                async with asyncio.timeout(self._timeout_s):
                    response = await self._client.embeddings.create(model=self._model, input=batch)
            except (openai.RateLimitError, openai.APIConnectionError, TimeoutError) as exc:
                problem: Exception = exc
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    answered = f"the embeddings endpoint answered {exc.status_code}"
                    raise EmbeddingsUnavailable(answered) from exc
                problem = exc
            else:
                rows = sorted(response.data, key=lambda row: row.index)
                if len(rows) != len(batch):
                    raise EmbeddingsUnavailable(
                        f"the embeddings endpoint returned {len(rows)} vectors for {len(batch)} texts"
                    )
                return [_unit(row.embedding) for row in rows]
            log.warning("embeddings call %d failed (%s)", attempt + 1, type(problem).__name__)
            await asyncio.sleep(random.uniform(0, 0.25 * 2**attempt))
        raise EmbeddingsUnavailable("the embeddings endpoint is not answering")

    async def aclose(self) -> None:
        await self._client.close()


def _unit(values: Sequence[float]) -> Vectors:
    vector = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector
