"""Sentiment from the chat model: it reads the message with what came before, so it
catches sarcasm and frustration behind polite words. It answers with a JSON object
(`{"score": -1..1}`); an answer that is late, malformed or refused falls back to the
local scorer, so a turn never waits on it or fails for it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

from providers.llm.base import ChatModel
from providers.sentiment.base import SentimentScore
from providers.sentiment.local import LocalSentiment
from shop.errors import AftercareError

log = logging.getLogger(__name__)

_PROMPT = (
    "Rate the customer's sentiment in their LAST message to an online shop's support chat, "
    "from -1 (angry, upset) to 1 (delighted). Sarcasm and polite words around a problem are "
    'negative. Answer with JSON only: {"score": <number>}'
)


class ChatModelSentiment:
    def __init__(self, model: ChatModel, fallback: LocalSentiment, *, timeout_s: float = 4.0) -> None:
        self._model = model
        self._fallback = fallback
        self._timeout_s = timeout_s

    @property
    def name(self) -> str:
        return f"{self._model.name} (chat model)"

    async def score(self, text: str, *, context: Sequence[str] = ()) -> SentimentScore:
        earlier = "\n".join(f"- {line}" for line in list(context)[-4:]) or "(none)"
        messages = [
            {"role": "system", "content": _PROMPT},
            {"role": "user", "content": f"Earlier messages:\n{earlier}\n\nLast message:\n{text}"},
        ]
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        try:
            turn = await self._model.complete(messages, [], deadline=deadline)
            value = float(json.loads(_json_part(turn.text))["score"])
        except (AftercareError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.info("sentiment from the chat model failed (%s); the local scorer answers", exc)
            return self._fallback.score_now(text)
        return SentimentScore.of(value, self.name)

    async def aclose(self) -> None:
        return None  # the chat model belongs to the app, which closes it


def _json_part(text: str) -> str:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the answer")
    return text[start : end + 1]
