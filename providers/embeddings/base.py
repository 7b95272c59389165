"""What embeddings are to the dialogs: texts in, L2-normalised vectors out.

The intent classifier and the policy search only need "turn these texts into unit
vectors", so a dot product is the cosine similarity. In production that is Azure OpenAI
(`text-embedding-3-small`, `providers.embeddings.openai_compatible`); with no cloud it is
all-MiniLM-L6-v2 shipped inside a PyPI package (`providers.embeddings.local`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]


@runtime_checkable
class Embeddings(Protocol):
    """Turns texts into L2-normalised vectors, one row per text, in input order."""

    @property
    def name(self) -> str:
        """The model's name, for logs and evaluation output."""
        ...

    async def start(self) -> None:
        """Gets ready to answer (the local model loads, off the event loop); called once
        in the app's start-up so the first customer does not wait for it."""
        ...

    async def embed(self, texts: Sequence[str]) -> Vectors: ...

    async def aclose(self) -> None: ...
