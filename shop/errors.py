"""One small exception hierarchy for the whole app.

Providers translate SDK exceptions into these; the HTTP layer maps them to status
codes in one place (`bot.http_errors`; the channel
protocols add their own refusals in `bot.errors`); customers always get a plain sentence.
"""

from __future__ import annotations


class AftercareError(Exception):
    """Base of every error this app raises on purpose."""


class ConfigurationError(AftercareError):
    """A setting is missing or wrong; start-up stops with this message."""


class StoreUnavailable(AftercareError):
    """The order or state store cannot be reached right now; the turn may be retried."""


class EmbeddingsUnavailable(AftercareError):
    """The embedding model could not encode (its process died); the next call starts it again."""


class ConcurrencyConflict(AftercareError):
    """A write lost an optimistic-concurrency race (stale ETag); re-read and retry."""


class RetailError(AftercareError):
    """An order action was refused by a shop rule (wrong status, bad payment method ...).

    Nothing was changed; the message is one plain sentence that can go back to the
    model as a tool result or to staff on the command line.
    """


class ModelError(AftercareError):
    """The chat model could not give a usable answer for this turn."""


class ModelUnavailable(ModelError):
    """The model endpoint failed, throttled past the turn's deadline, or the breaker is open."""


class ContentFiltered(ModelError):
    """The model provider's content filter blocked the prompt or the answer."""


class ModelBehaviorError(ModelError):
    """The model misbehaved (unknown tool, bad arguments, endless tool calls)."""


class SpeechUnavailable(AftercareError):
    """Speech recognition or synthesis cannot serve a call now (every line busy, the
    speech service failing); the caller hears a short apology and the call ends."""
