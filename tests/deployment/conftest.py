"""The deployment tests' own Cosmos DB test server (the store tests' fixture lives in
tests/store/conftest.py, out of reach here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cosmos import cosmos_server


@pytest.fixture(scope="session")
def cosmos_endpoint() -> Iterator[str]:
    with cosmos_server() as endpoint:
        yield endpoint
