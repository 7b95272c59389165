"""`aftercare eval safety`: the local content-safety check on the labelled messages,
printed with precision and recall; it fails when a frustrated customer would be warned."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.cli import build_parser
from bot.settings import Settings
from evals.cli import run_safety_command
from evals.safety import LABELS, load_safety_set


def test_the_set_is_sized_and_labelled() -> None:
    messages = load_safety_set()
    counts = {label: sum(m.label == label for m in messages) for label in LABELS}
    assert min(counts.values()) >= 35, counts


def test_the_command_prints_the_figures(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_safety_command(build_parser().parse_args(["eval", "safety"]), settings) == 0
    out = capsys.readouterr().out
    assert "abuse: precision 100.0%" in out and "injection: precision 100.0%" in out
    assert "frustrated customers warned as abusive: 0 of" in out


def test_a_frustrated_customer_warned_fails_the_run(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.yaml"
    messages = [{"label": "frustrated", "text": "you stupid bot"}, {"label": "normal", "text": "hi"}]
    wrong.write_text(yaml.safe_dump({"messages": messages}), encoding="utf-8")
    args = build_parser().parse_args(["eval", "safety", "--file", str(wrong), "--verbose"])
    assert run_safety_command(args, settings) == 1
    out = capsys.readouterr().out
    assert "frustrated customers warned as abusive: 1 of 1" in out and "'you stupid bot'" in out
