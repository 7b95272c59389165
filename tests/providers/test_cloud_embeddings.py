"""Embeddings from Azure OpenAI / OpenAI through the real `openai` SDK, against the scripted
OpenAI-compatible server, chosen by EMBEDDINGS_PROVIDER in the one provider factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from bot.settings import Settings
from providers.embeddings.local import LocalEmbeddings
from providers.embeddings.openai_compatible import OpenAIEmbeddings
from providers.factory import build_embeddings
from shop.errors import ConfigurationError, EmbeddingsUnavailable
from tests.support.scripted_openai import ScriptedOpenAI


@pytest.fixture
def openai_settings(
    scripted: ScriptedOpenAI, make_settings: Callable[..., Settings]
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "EMBEDDINGS_PROVIDER": "openai",
            "OPENAI_BASE_URL": f"{scripted.base_url}/v1",
            "OPENAI_API_KEY": "test-key",
            "OPENAI_EMBEDDING_MODEL": "text-embedding-3-small",
        }
        values.update(overrides)
        return make_settings(**values)

    return make


async def test_vectors_are_unit_length_in_input_order_and_repeats_are_not_asked_twice(
    scripted: ScriptedOpenAI, openai_settings: Callable[..., Settings]
) -> None:
    embeddings = build_embeddings(openai_settings())
    assert isinstance(embeddings, OpenAIEmbeddings)
    await embeddings.start()
    try:
        vectors = await embeddings.embed(["where is my order", "refund", "where is my order"])
        assert vectors.shape == (3, 3)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
        # The server answers in reverse order; rows still follow the input.
        expected = np.array([len("refund"), "refund".count("e") + 1, 2], dtype=np.float32)
        assert np.allclose(vectors[1], expected / np.linalg.norm(expected))
        assert np.allclose(vectors[0], vectors[2])
        assert scripted.requests[0]["model"] == "text-embedding-3-small"
        assert scripted.requests[0]["input"] == ["where is my order", "refund"]  # each text once
        await embeddings.embed(["refund"])
        assert len(scripted.requests) == 1  # served from the cache
    finally:
        await embeddings.aclose()


async def test_a_server_error_is_retried_and_a_refusal_is_reported(
    scripted: ScriptedOpenAI, openai_settings: Callable[..., Settings]
) -> None:
    embeddings = build_embeddings(openai_settings())
    try:
        scripted.script({"status": 503})
        assert (await embeddings.embed(["hello"])).shape == (1, 3)
        assert len(scripted.requests) == 2
        scripted.script({"status": 401})
        with pytest.raises(EmbeddingsUnavailable, match="answered 401"):
            await embeddings.embed(["another text"])
    finally:
        await embeddings.aclose()


async def test_azure_openai_uses_the_embedding_deployment(
    scripted: ScriptedOpenAI, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        EMBEDDINGS_PROVIDER="azure",
        AZURE_OPENAI_ENDPOINT=scripted.base_url,
        AZURE_OPENAI_API_KEY="azure-key",
        AZURE_OPENAI_EMBEDDING_DEPLOYMENT="embeddings-small",
    )
    embeddings = build_embeddings(settings)
    try:
        await embeddings.embed(["damaged parcel"])
    finally:
        await embeddings.aclose()
    assert scripted.paths[0].startswith("/openai/deployments/embeddings-small/embeddings")
    assert "embeddings-small" in embeddings.name


def test_the_local_model_is_the_default(make_settings: Callable[..., Settings]) -> None:
    assert isinstance(build_embeddings(make_settings()), LocalEmbeddings)


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        (
            {"EMBEDDINGS_PROVIDER": "azure", "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com"},
            "AZURE_OPENAI_EMBEDDING_DEPLOYMENT",
        ),
        ({"EMBEDDINGS_PROVIDER": "openai"}, "OPENAI_API_KEY"),
    ],
)
def test_a_cloud_provider_without_its_settings_stops_start_up(
    make_settings: Callable[..., Settings], values: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        make_settings(**values).validate_combinations()
