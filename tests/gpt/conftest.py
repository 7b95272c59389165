"""The GPT dialog's fallback is the real offline engine, built on the shared resources."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dialogs import OfflineEngine, OfflineResources, build_offline_engine
from shop.retail import RetailService


@pytest.fixture
def offline_engine_factory(offline_resources: OfflineResources) -> Callable[[RetailService], OfflineEngine]:
    return lambda retail: build_offline_engine(retail, offline_resources)
