"""`aftercare teams package`: the Teams app package an admin uploads to Teams (Teams admin
center, or *Apps > Manage your apps > Upload an app*): a zip holding `manifest.json`
with the bot's Microsoft App ID filled in, and the two icons.

The manifest's template ships inside the package (`manifest.json` beside this module),
so the command works from an installed wheel. The zip is reproducible: the same app id
and version give the same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import zipfile
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from bot.settings import Settings
from bot.teams_app.icons import colour_icon, outline_icon

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Teams reads the version as semver (major.minor.patch) and wants it raised on every update.
_VERSION = re.compile(r"\d{1,9}\.\d{1,9}\.\d{1,9}")
# Zip entries get a fixed time so the package's bytes depend on its content alone.
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)
DEFAULT_OUT = Path("aftercare-teams.zip")


class PackageError(ValueError):
    """A value the package cannot be built with; the message names it."""


def manifest_template() -> dict[str, Any]:
    text = resources.files("bot.teams_app").joinpath("manifest.json").read_text(encoding="utf-8")
    template: dict[str, Any] = json.loads(text)
    return template


def app_version() -> str:
    """The installed package's version, as Teams wants it (major.minor.patch)."""
    version = metadata.version("aftercare")
    match = _VERSION.match(version)
    return match.group(0) if match else "0.0.0"


def build_manifest(app_id: str, version: str) -> dict[str, Any]:
    """The manifest with the bot's id (the app's id too) and the version filled in."""
    if not _GUID.fullmatch(app_id):
        raise PackageError(
            f"--app-id: {app_id!r} is not a GUID; give the bot's Microsoft App ID "
            "(with azd: the managed identity's client id, `azd env get-value MICROSOFT_APP_ID`)"
        )
    if not _VERSION.fullmatch(version):
        raise PackageError(f"--version: {version!r} is not major.minor.patch, e.g. 1.0.0")
    manifest = manifest_template()
    manifest["id"] = app_id
    manifest["version"] = version
    for bot in manifest["bots"]:
        bot["botId"] = app_id
    return manifest


def build_package(app_id: str, version: str | None = None) -> bytes:
    """The zip's bytes: manifest.json and the two icons it names, at the zip's root."""
    manifest = build_manifest(app_id, version or app_version())
    files = {
        "manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(),
        manifest["icons"]["color"]: colour_icon(manifest["accentColor"]),
        manifest["icons"]["outline"]: outline_icon(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return buffer.getvalue()


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    teams = subparsers.add_parser("teams", help="the Microsoft Teams app")
    commands = teams.add_subparsers(dest="teams_command", required=True, metavar="{package}")
    package = commands.add_parser(
        "package", help="build the Teams app package (manifest with the bot's id, icons) to upload"
    )
    package.add_argument(
        "--app-id", default="", help="the bot's Microsoft App ID (default: MicrosoftAppId from the settings)"
    )
    package.add_argument(
        "--version", default=None, help="the app's version, raised on every update (default: the package's)"
    )
    package.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"where to write the zip (default: {DEFAULT_OUT})"
    )
    package.set_defaults(handler=run_package)


def run_package(args: argparse.Namespace, settings: Settings) -> int:
    app_id = args.app_id or settings.app_id
    if not app_id:
        print("aftercare: --app-id is required (or set MicrosoftAppId)", file=sys.stderr)
        return 2
    try:
        data = build_package(app_id, args.version)
    except PackageError as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(
        f"wrote {args.out} for the bot {app_id}: upload it in Teams (Apps > Manage your apps > Upload an app)"
    )
    return 0
