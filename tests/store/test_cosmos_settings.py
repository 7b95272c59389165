"""The Cosmos DB client honours the proxy variables, read once rather than per request."""

from __future__ import annotations

import pytest

from shop.store.cosmos import _env_proxies_for


def test_a_configured_proxy_is_used_for_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.shop.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert _env_proxies_for("https://shop.documents.azure.com:443/") == {
        "https": "http://proxy.shop.internal:3128"
    }


def test_no_proxy_and_no_variables_mean_a_direct_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.shop.internal:3128")
    monkeypatch.setenv("NO_PROXY", ".documents.azure.com")
    assert _env_proxies_for("https://shop.documents.azure.com:443/") == {}
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert _env_proxies_for("https://shop.documents.azure.com:443/") == {}
