"""Chat models: the protocol (`base`) and the `openai` SDK implementation."""

from providers.llm.base import ChatModel, ModelTurn, TextSink, ToolCall, Usage

__all__ = ["ChatModel", "ModelTurn", "TextSink", "ToolCall", "Usage"]
