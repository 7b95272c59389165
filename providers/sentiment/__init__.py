"""Sentiment: the protocol (`base`), VADER with the shop's own rules (`local`, the
embedded default), and the chat model with a JSON answer (`chat_model`)."""

from providers.sentiment.base import Sentiment, SentimentScore

__all__ = ["Sentiment", "SentimentScore"]
