"""Safety: removing secrets from customers' messages before anything keeps them
(`redaction`), and reading messages and answers for abuse, prompt injection and harmful
content (`base` is the protocol; `local` the embedded rules, `azure` Azure AI Content Safety)."""

from providers.safety.base import (
    CLEAN,
    Category,
    CombinedSafety,
    ContentSafety,
    Direction,
    Finding,
    NoContentSafety,
    SafetyVerdict,
)

__all__ = [
    "CLEAN",
    "Category",
    "CombinedSafety",
    "ContentSafety",
    "Direction",
    "Finding",
    "NoContentSafety",
    "SafetyVerdict",
]
