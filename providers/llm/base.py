"""What a chat model is to the dialogs: one streamed call that returns text and tool calls.

`ChatModel` is the protocol; `providers.llm.openai_compatible` implements it over the
`openai` SDK (Azure OpenAI, OpenAI, Ollama, vLLM ...), and `providers.factory` picks it
from the settings. A test's scripted model implements it too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

# Receives each piece of the answer's text as the model streams it.
TextSink = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # the model's raw JSON text; validated by the dialog, not trusted here


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ModelTurn:
    text: str
    tool_calls: list[ToolCall]
    finish_reason: str
    usage: Usage


class ChatModel(Protocol):
    name: str

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        *,
        deadline: float,
        on_text: TextSink | None = None,
    ) -> ModelTurn:
        """One model call. `deadline` is on the event loop's clock; raises ModelError kinds."""
        ...

    async def aclose(self) -> None: ...
