"""The azd hooks (deployment/hooks/*.sh) run against a stand-in `azd` that keeps the
environment in a file and logs what it is asked: the secrets are made once, URL-safe and
long enough for the settings; the incoming-call subscription is turned on and provisioned
once, after the first deploy. (The PowerShell twins are not run here: no pwsh.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "deployment" / "hooks"

# Like azd: `env get-value` fails for an unknown key; `env set` stores; anything else is logged.
FAKE_AZD = r"""#!/bin/sh
store="$AZD_FAKE_DIR/env"
touch "$store"
echo "$*" >> "$AZD_FAKE_DIR/calls"
if [ "$1 $2" = "env get-value" ]; then
    line=$(grep "^$3=" "$store") || { echo "ERROR: key '$3' not found" >&2; exit 1; }
    echo "${line#*=}"
elif [ "$1 $2" = "env set" ]; then
    grep -v "^$3=" "$store" > "$store.new" || true
    echo "$3=$4" >> "$store.new"
    mv "$store.new" "$store"
fi
"""


@pytest.fixture
def azd(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "azd"
    fake.write_text(FAKE_AZD)
    fake.chmod(0o755)
    return tmp_path


def run_hook(name: str, azd: Path) -> str:
    env = {
        "PATH": f"{azd / 'bin'}:/usr/bin:/bin",
        "AZD_FAKE_DIR": str(azd),
        "HOME": str(azd),
    }
    result = subprocess.run(
        ["sh", str(HOOKS / name)], env=env, capture_output=True, text=True, timeout=30, cwd=azd
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def stored(azd: Path) -> dict[str, str]:
    lines = (azd / "env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def calls(azd: Path) -> list[str]:
    path = azd / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_preprovision_generates_each_secret_once(azd: Path) -> None:
    run_hook("preprovision.sh", azd)
    first = stored(azd)
    assert set(first) == {"ACS_WEBHOOK_SECRET", "DIRECT_LINE_SECRET"}
    assert first["ACS_WEBHOOK_SECRET"] != first["DIRECT_LINE_SECRET"]
    for value in first.values():
        assert len(value) == 64 and int(value, 16) >= 0
    # The app accepts them (the webhook secret's own rules).
    settings = load_settings(_env_file=None, ACS_WEBHOOK_SECRET=first["ACS_WEBHOOK_SECRET"])
    assert settings.acs_webhook_secret == first["ACS_WEBHOOK_SECRET"]

    run_hook("preprovision.sh", azd)
    assert stored(azd) == first


def test_preprovision_keeps_a_secret_already_set(azd: Path) -> None:
    (azd / "env").write_text("ACS_WEBHOOK_SECRET=chosen-by-the-operator-0123456789\n")
    run_hook("preprovision.sh", azd)
    assert stored(azd)["ACS_WEBHOOK_SECRET"] == "chosen-by-the-operator-0123456789"


def test_postdeploy_subscribes_incoming_calls_once(azd: Path) -> None:
    (azd / "env").write_text(
        "MICROSOFT_APP_ID=3f2504e0-4f89-41d3-9a0c-0305e82c3301\n"
        "SERVICE_AFTERCARE_URI=https://ca-x.example.azurecontainerapps.io\n"
        "ACS_RESOURCE_NAME=acs-x\n"
    )
    out = run_hook("postdeploy.sh", azd)
    assert stored(azd)["ACS_INCOMING_CALL_SUBSCRIPTION"] == "true"
    assert calls(azd).count("provision --no-prompt") == 1
    assert "teams package --app-id 3f2504e0-4f89-41d3-9a0c-0305e82c3301" in out

    run_hook("postdeploy.sh", azd)
    assert calls(azd).count("provision --no-prompt") == 1


@pytest.mark.parametrize("name", sorted(p.name for p in HOOKS.glob("*.sh")))
def test_shell_hooks_are_posix_sh(name: str) -> None:
    # `sh -n` parses without running; dash (Debian's sh) rejects bash-only syntax.
    assert subprocess.run(["sh", "-n", str(HOOKS / name)], timeout=10).returncode == 0
    assert os.access(HOOKS / name, os.X_OK)
