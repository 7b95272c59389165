"""The SDK patches change no behaviour: the retry policy is the one msrest defines."""

from __future__ import annotations

from msrest.universal_http.requests import ClientRetryPolicy

from bot.sdk_patches import apply_sdk_patches


def test_retry_policy_is_unchanged_by_the_patch() -> None:
    # msrest's definition, written out: retry every status from 0 to 998 except the safe ones.
    safe = [i for i in range(500) if i != 408] + [501, 505]
    expected = [i for i in range(999) if i not in safe]
    apply_sdk_patches()
    apply_sdk_patches()  # idempotent
    policy = ClientRetryPolicy().policy
    assert isinstance(ClientRetryPolicy.safe_codes, frozenset)
    assert list(policy.status_forcelist) == expected
    assert (
        408 in policy.status_forcelist
        and 503 in policy.status_forcelist
        and 404 not in policy.status_forcelist
    )
    assert (policy.total, policy.connect, policy.read, policy.backoff_factor) == (3, 3, 3, 0.8)
