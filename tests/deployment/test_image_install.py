"""The image's install steps, outside Docker (no Docker engine here): the files the
Dockerfile's build stage copies, and nothing else, are laid out in an empty folder; the
same script the image runs (deployment/install.sh) installs them into a new virtualenv;
the runtime stage's layout (app.py, the Web Chat bundle) and environment are repeated; and
the app is started from that virtualenv, on loopback, and must answer its health checks,
the Dockerfile's own HEALTHCHECK command included, and build the Teams package from the
installed wheel. The one difference from the image: torch's CPU wheel comes from the
local wheel folder (/opt/wheels) when there is one, as in the Makefile.

It installs about 100 packages (about three minutes, most of it downloads); `make test`
runs it, and `pytest -m image_install` runs it alone. tests/clean_clone covers the
developer's install (`make install`, editable, with the dev tools); this one the image's
(a wheel, the runtime extras only)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import zipfile
from pathlib import Path

import aiohttp
import pytest

from tests.deployment import dockerfile

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 600
READY_WITHIN_S = 180
LOCAL_WHEELS = Path("/opt/wheels")

pytestmark = pytest.mark.image_install


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path} was not written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lay_out_build_context(image: dockerfile.Dockerfile, context: Path) -> None:
    """Copies what the build stage's COPY instructions name, from the working tree, skipping
    what .dockerignore keeps out of the context (compiled bytecode)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source_stage, sources, _ in image.stage("build").copies():
        assert source_stage is None
        for source in sources:
            origin, target = ROOT / source, context / source
            target.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=ignore)
            else:
                shutil.copy2(origin, target)


def install_environment() -> dict[str, str]:
    """The user's environment (their pip configuration and caches), minus this checkout's
    virtualenv; torch from the local wheel folder when there is one."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH"}}
    if any(LOCAL_WHEELS.glob("torch-*.whl")):
        env["TORCH_SOURCE"] = f"--no-index --find-links {LOCAL_WHEELS}"
    return env


def run_install(context: Path, venv: Path, build_run: str, log: Path) -> None:
    words = build_run.split()
    assert words[:2] == ["sh", "deployment/install.sh"], build_run
    with log.open("wb") as out:
        try:
            result = subprocess.run(
                ["sh", "deployment/install.sh", str(venv)],
                cwd=context,
                env=install_environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=INSTALL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"the install ran over {INSTALL_TIMEOUT_S}s; its log ends:\n{tail(log)}")
    assert result.returncode == 0, f"the install failed ({result.returncode}); its log ends:\n{tail(log)}"


def lay_out_runtime(image: dockerfile.Dockerfile, app_dir: Path) -> None:
    """The runtime stage's COPYs: app.py from the context, the Web Chat bundle that the
    webchat stage's `npm ci` produced (here: `make install`'s node_modules)."""
    for source_stage, sources, destination in image.stage("runtime").copies():
        if source_stage == "build":
            continue  # the virtualenv, installed in place
        [source] = sources
        origin = ROOT / source.removeprefix("/src/") if source_stage == "webchat" else ROOT / source
        assert origin.is_file(), f"{origin} is missing (run `make install` for node_modules)"
        target = (
            app_dir / destination if not destination.endswith("/") else app_dir / destination / origin.name
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target)


def runtime_environment(image: dockerfile.Dockerfile, venv: Path, home: Path, port: int) -> dict[str, str]:
    """The runtime stage's ENV, the virtualenv where the image has /opt/aftercare, and
    loopback instead of 0.0.0.0."""
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    for name, value in image.stage("runtime").env().items():
        env[name] = value.replace("/opt/aftercare", str(venv)).replace("$PATH", env["PATH"])
    env["HOST"] = "127.0.0.1"
    env["PORT"] = str(port)
    return env


async def wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_WITHIN_S
    last = "no answer yet"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while loop.time() < deadline:
            assert process.poll() is None, f"the app exited with {process.returncode} before it was ready"
            try:
                async with session.get(f"{base_url}/readyz") as resp:
                    if resp.status == 200:
                        async with session.get(f"{base_url}/") as page:
                            assert page.status == 200, "the Web Chat page"
                        return
                    last = f"{resp.status} {await resp.text()}"
            except (aiohttp.ClientError, TimeoutError) as error:
                last = repr(error)
            await asyncio.sleep(0.5)
    raise AssertionError(f"/readyz did not answer 200 within {READY_WITHIN_S}s; last: {last}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.timeout(900)
def test_the_image_install_steps_give_an_app_that_starts_and_is_healthy(tmp_path: Path) -> None:
    image = dockerfile.parse(ROOT / "deployment" / "Dockerfile")
    context, venv, app_dir = tmp_path / "context", tmp_path / "opt-aftercare", tmp_path / "app"
    lay_out_build_context(image, context)
    [build_run] = image.stage("build").all("RUN")
    run_install(context, venv, build_run.arguments, tmp_path / "install.log")

    # The runtime extras and nothing of the dev tools: the product runs without them.
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert "torch==2.13.0+cpu" in installed
    for dev_tool in ("pytest==", "mypy==", "ruff==", "playwright=="):
        assert dev_tool not in installed, f"{dev_tool} is in the image's packages"

    lay_out_runtime(image, app_dir)
    (app_dir / "data").mkdir()
    home = tmp_path / "home"
    home.mkdir()
    port = free_loopback_port()
    env = runtime_environment(image, venv, home, port)
    server_log = tmp_path / "app.log"
    with server_log.open("wb") as out:
        process = subprocess.Popen(
            [str(python), "app.py"], cwd=app_dir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            try:
                asyncio.run(wait_ready(f"http://127.0.0.1:{port}", process))
            except AssertionError as error:
                raise AssertionError(f"{error}\nthe app's log ends:\n{tail(server_log)}") from error
            # The image's own HEALTHCHECK command, as Docker would run it in the container.
            [healthcheck] = image.stage("runtime").all("HEALTHCHECK")
            command = dockerfile.Instruction("CMD", healthcheck.arguments.split(" CMD ", 1)[1]).exec_form()
            assert command is not None and command[0] == "python"
            check = subprocess.run([str(python), *command[1:]], env=env, cwd=app_dir, timeout=30)
            assert check.returncode == 0, "the image's HEALTHCHECK command failed"
        finally:
            stop(process)

    log_text = server_log.read_text(errors="replace")
    assert "Traceback" not in log_text, tail(server_log, 120)
    # The app ran from the installed wheel, its data with it, not from a source tree.
    assert "site-packages/shop/data/retail" in log_text, tail(server_log)

    # The Teams package from the installed wheel (its manifest template is package data).
    teams = subprocess.run(
        [
            str(venv / "bin" / "aftercare"),
            "teams",
            "package",
            "--app-id",
            "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        ],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert teams.returncode == 0, teams.stderr
    with zipfile.ZipFile(app_dir / "aftercare-teams.zip") as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
    # Passed: drop the 1.8 GB virtualenv; the logs stay for a look.
    shutil.rmtree(venv, ignore_errors=True)
