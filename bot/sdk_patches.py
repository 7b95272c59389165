"""Minimal, documented fixes to third-party SDK hot spots on the turn path.

Each patch keeps the SDK's behaviour exactly and only removes a cost; tests in
tests/test_sdk_patches.py check that the results are unchanged.

msrest `ClientRetryPolicy`
    Every BotBuilder turn builds two msrest clients (the ConnectorClient for replies and
    the token API client), and each builds a `ClientRetryPolicy`, whose constructor
    computes its retry status list as `[i for i in range(999) if i not in safe_codes]`
    with `safe_codes` a 500-element *list*: about half a million comparisons, roughly
    8 ms of CPU per client on this machine, most of a stock bot's CPU per turn.
    Making `safe_codes` a frozenset turns the scan into hash look-ups; the list it
    produces is identical. (msrest is in maintenance; fixing it upstream is not an option.)
"""

from __future__ import annotations

from msrest.universal_http.requests import ClientRetryPolicy


def apply_sdk_patches() -> None:
    """Applies every patch; calling it again changes nothing."""
    if not isinstance(ClientRetryPolicy.safe_codes, frozenset):
        ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)  # type: ignore[assignment]
