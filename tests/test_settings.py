"""Settings: typed, validated at start, and a bad value names its variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, StoreKind, load_settings
from shop.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_embedded_local_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in (
        "HOST",
        "PORT",
        "STORE",
        "MicrosoftAppId",
        "EMBEDDING_THREADS",
        "DIRECT_LINE_REPLAY_AFTER_S",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 3978)
    assert settings.store == StoreKind.SQLITE
    assert settings.anonymous
    # Lost turns wait out any model turn; the model leaves the event loop a core.
    assert settings.direct_line_replay_after_s > settings.llm_turn_deadline_s
    assert settings.embedding_thread_count == max(1, (os.cpu_count() or 1) - 1)


def test_bot_framework_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MicrosoftAppId", "app-123")
    monkeypatch.setenv("MicrosoftAppPassword", "pw")
    monkeypatch.setenv("PORT", "8080")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.app_id == "app-123" and settings.port == 8080 and not settings.anonymous


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "not-a-port"),
        ("PORT", "70000"),
        ("STORE", "mongodb"),
        ("LOG_LEVEL", "LOUD"),
        ("COSMOS_ENDPOINT", "x"),
        ("DIRECT_LINE_REPLAY_AFTER_S", "0"),
        ("EMBEDDING_THREADS", "-1"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings(_env_file=None)


def test_app_id_without_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MicrosoftAppId", "app-123")
    monkeypatch.delenv("MicrosoftAppPassword", raising=False)
    with pytest.raises(ConfigurationError, match="MicrosoftAppPassword"):
        load_settings(_env_file=None)


def test_start_up_stops_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PORT": "eighty"}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "PORT" in result.stderr
    assert "Traceback" not in result.stderr
