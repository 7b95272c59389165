"""Embeddings: the protocol (`base`), the local model and the Azure OpenAI / OpenAI one."""

from providers.embeddings.base import Embeddings, Vectors

__all__ = ["Embeddings", "Vectors"]
