"""The staff commands as `aftercare` runs them: `data import`, `data export` and
`actions apply`, each through the parser `bot.staff_cli.add_commands` builds."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from bot.staff_cli import add_commands


def run(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="aftercare")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args, settings)
    return code


def output_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
def seeded_settings(make_settings: Callable[..., Settings], dataset_dir: Path) -> Settings:
    return make_settings(SEED_ON_START=True, DATASET_DIR=dataset_dir)


def test_actions_apply_prints_one_result_per_line_in_order(
    seeded_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    actions = tmp_path / "actions.jsonl"
    actions.write_text(
        "\n".join(
            [
                json.dumps({"name": "get_order_details", "kwargs": {"order_id": "#W2611340"}}),
                json.dumps(
                    {
                        "name": "cancel_pending_order",
                        "kwargs": {"order_id": "#W1080318", "reason": "no longer needed"},
                    }
                ),
                "",
                json.dumps(
                    {
                        "name": "cancel_pending_order",
                        "kwargs": {"order_id": "#W1080318", "reason": "no longer needed"},
                    }
                ),
                json.dumps({"name": "list_all_product_types"}),
            ]
        ),
        encoding="utf-8",
    )
    assert run(["actions", "apply", str(actions)], seeded_settings) == 0
    first, cancel, again, types = output_lines(capsys)
    assert first["ok"] and first["result"]["status"] == "processed"
    assert cancel == {**cancel, "line": 2, "name": "cancel_pending_order", "ok": True}
    assert cancel["result"]["status"] == "cancelled"
    assert again["line"] == 4 and not again["ok"] and again["error_type"] == "RetailError"
    assert "only pending orders can be cancelled" in again["error"]
    assert types["ok"] and len(types["result"]) == 50


def test_actions_apply_reports_bad_lines_runs_the_rest_and_exits_non_zero(
    seeded_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    actions = tmp_path / "actions.jsonl"
    cancel = {"order_id": "#W1080318", "reason": "ordered by mistake"}
    actions.write_text(
        "not json\n"
        '{"name": "drop_all_tables", "kwargs": {}}\n'
        '{"name": "cancel_pending_order", "kwargs": {"order_id": "#W1080318"}}\n'
        + json.dumps({"name": "cancel_pending_order", "kwargs": cancel})
        + "\n",
        encoding="utf-8",
    )
    assert run(["actions", "apply", str(actions)], seeded_settings) == 1
    not_json, unknown, missing_reason, applied = output_lines(capsys)
    assert "not JSON" in not_json["error"]
    assert "unknown action 'drop_all_tables'" in unknown["error"]
    assert "bad arguments" in missing_reason["error"] and "reason" in missing_reason["error"]
    assert applied["ok"] and applied["result"]["cancel_reason"] == "ordered by mistake"


def test_actions_apply_reads_stdin_and_refuses_an_unreadable_file(
    seeded_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(
        "sys.stdin", io.StringIO('{"name": "track_order", "kwargs": {"order_id": "#W2611340"}}\n')
    )
    assert run(["actions", "apply", "-"], seeded_settings) == 0
    assert output_lines(capsys)[0]["result"]["fulfillments"][0]["tracking_id"] == ["357962501027"]
    assert run(["actions", "apply", str(tmp_path / "missing.jsonl")], seeded_settings) == 1
    assert "cannot read" in capsys.readouterr().err


def test_data_import_then_export_gives_back_the_dataset(
    make_settings: Callable[..., Settings],
    dataset_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings()
    assert run(["data", "import", "--source", str(dataset_dir)], settings) == 0
    assert output_lines(capsys)[0]["imported"] == {"users": 500, "orders": 1000, "products": 50}
    assert run(["data", "export", "--target", str(tmp_path / "out")], settings) == 0
    assert output_lines(capsys)[0]["exported"]["orders"] == 1000
    for name in ("users", "orders", "products"):
        original = (dataset_dir / f"{name}.json").read_text("utf-8")
        exported = (tmp_path / "out" / f"{name}.json").read_text("utf-8")
        assert json.dumps(json.loads(exported)) == json.dumps(json.loads(original))


def test_data_import_from_a_missing_folder_fails_with_a_message(
    make_settings: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["data", "import", "--source", str(tmp_path / "nowhere")], make_settings()) == 1
    assert "cannot import from" in capsys.readouterr().err
