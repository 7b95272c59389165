"""Streaming a model's reply to channels that can show it before it is complete.

- Teams (one-to-one chats): an informative update first, then typing activities carrying
  the text so far, then the final message, all tied by a `streaminfo` entity
  (streamId, streamType, streamSequence), as Teams' streaming protocol defines.
  Updates are spaced out (Teams throttles a stream that updates too often) and each
  carries the whole text so far, as Teams requires.
- Voice: each finished sentence goes out as its own message with `speak`, so speech
  synthesis can start on the first sentence while the model is still writing.
- Other channels (Web Chat): a typing indicator, then the message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import ClassVar

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes, Entity

INFORMATIVE_TEXT = "Looking into that for you\u2026"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class StreamInfo(Entity):
    """Teams' `streaminfo` entity. A subclass because the SDK's `Entity` serialises only
    `type`; msrest serialises what a model's attribute map declares."""

    _attribute_map: ClassVar[dict[str, dict[str, str]]] = {
        "type": {"key": "type", "type": "str"},
        "stream_id": {"key": "streamId", "type": "str"},
        "stream_type": {"key": "streamType", "type": "str"},
        "stream_sequence": {"key": "streamSequence", "type": "int"},
    }

    def __init__(
        self, *, stream_type: str, stream_id: str | None = None, stream_sequence: int | None = None
    ) -> None:
        super().__init__(type="streaminfo")
        self.stream_id = stream_id
        self.stream_type = stream_type
        self.stream_sequence = stream_sequence


class TeamsStream:
    """One streamed reply in a Teams one-to-one chat."""

    def __init__(
        self, turn_context: TurnContext, *, min_interval_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._context = turn_context
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._text = ""
        self._sent_text = ""
        self._sequence = 0
        self._last_sent = 0.0
        self.stream_id: str | None = None

    async def start(self) -> None:
        self._sequence = 1
        informative = Activity(
            type=ActivityTypes.typing,
            text=INFORMATIVE_TEXT,
            entities=[StreamInfo(stream_type="informative", stream_sequence=self._sequence)],
        )
        response = await self._context.send_activity(informative)
        self.stream_id = response.id if response else None
        self._last_sent = self._clock()

    async def on_text(self, chunk: str) -> None:
        self._text += chunk
        if self.stream_id is None or self._clock() - self._last_sent < self._min_interval_s:
            return
        if self._text.strip() and self._text != self._sent_text:
            self._sequence += 1
            update = Activity(
                type=ActivityTypes.typing,
                text=self._text,
                entities=[
                    StreamInfo(
                        stream_id=self.stream_id, stream_type="streaming", stream_sequence=self._sequence
                    )
                ],
            )
            await self._context.send_activity(update)
            self._sent_text = self._text
            self._last_sent = self._clock()

    def finish(self, final: Activity) -> Activity:
        """Marks `final` (the first reply message) as the end of this stream."""
        if self.stream_id is not None:
            final.entities = [
                *(final.entities or []),
                StreamInfo(stream_id=self.stream_id, stream_type="final"),
            ]
        return final


class SentenceStream:
    """Sends each finished sentence of a spoken reply at once."""

    def __init__(self, turn_context: TurnContext) -> None:
        self._context = turn_context
        self._buffer = ""
        self.spoken = ""

    async def on_text(self, chunk: str) -> None:
        self._buffer += chunk
        *finished, self._buffer = _SENTENCE_END.split(self._buffer)
        for sentence in finished:
            if sentence.strip():
                await self._context.send_activity(
                    Activity(type=ActivityTypes.message, text=sentence, speak=sentence)
                )
                self.spoken = f"{self.spoken} {sentence}".strip()

    def remainder(self, final_text: str) -> str | None:
        """What of the final reply is still unsaid (None when nothing is)."""
        normalized = " ".join(final_text.split())
        if self.spoken and normalized.startswith(self.spoken):
            rest = normalized[len(self.spoken) :].strip()
            return rest or None
        return final_text
