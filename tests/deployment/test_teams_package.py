"""`aftercare teams package`: the zip Teams accepts. The manifest is validated against the
Teams manifest schema its `$schema` names (vendored in tests/deployment/schemas, so no
network), and the icons are read back as Teams checks them: PNG, 192x192 full colour and
32x32 white on transparent."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.cli import main as aftercare
from bot.teams_app.package import PackageError, build_manifest, build_package, manifest_template

SCHEMA = Path(__file__).with_name("schemas") / "MicrosoftTeams.v1.19.schema.json"
APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def read_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int, int]]]:
    """Width, height and RGBA pixels of an 8-bit RGBA PNG, chunk CRCs checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, idat = 8, [], b""
    width = height = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append(kind)
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, colour, interlace) == (8, 6, 0), "expected 8-bit RGBA, not interlaced"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    raw = zlib.decompress(idat)
    stride = width * 4
    assert len(raw) == height * (stride + 1)
    pixels: list[tuple[int, int, int, int]] = []
    for y in range(height):
        start = y * (stride + 1)
        assert raw[start] == 0, "this reader handles filter type 0 (none) only"
        row = raw[start + 1 : start + 1 + stride]
        pixels += [(row[i], row[i + 1], row[i + 2], row[i + 3]) for i in range(0, stride, 4)]
    return width, height, pixels


@pytest.fixture(scope="module")
def package() -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(build_package(APP_ID, "1.2.3"))) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def manifest(package: dict[str, bytes]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(package["manifest.json"])
    return loaded


def test_the_zip_holds_the_manifest_and_its_icons_at_its_root(package: dict[str, bytes]) -> None:
    assert sorted(package) == ["color.png", "manifest.json", "outline.png"]


def test_the_manifest_is_valid_against_the_teams_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    assert manifest["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")
    assert schema["properties"]["manifestVersion"]["const"] == manifest["manifestVersion"]
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_manifest(manifest: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = {**manifest, "id": "not-a-guid", "bots": [{**manifest["bots"][0], "scopes": ["everywhere"]}]}
    messages = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(broken)]
    assert len(messages) >= 2, messages


def test_the_bot_id_is_filled_in_everywhere(manifest: dict[str, Any], package: dict[str, bytes]) -> None:
    assert manifest["id"] == APP_ID
    assert [bot["botId"] for bot in manifest["bots"]] == [APP_ID]
    assert manifest["version"] == "1.2.3"
    assert b"{{" not in package["manifest.json"]


def test_the_icons_are_the_sizes_and_colours_teams_asks_for(
    manifest: dict[str, Any], package: dict[str, bytes]
) -> None:
    width, height, colour = read_png(package[manifest["icons"]["color"]])
    assert (width, height) == (192, 192)
    assert all(alpha == 255 for *_, alpha in colour), "the colour icon must be opaque"
    accent = tuple(int(manifest["accentColor"][i : i + 2], 16) for i in (1, 3, 5))
    assert colour[0][:3] == accent  # the corner is the background
    assert len({p[:3] for p in colour}) > 2, "the colour icon draws something"

    width, height, outline = read_png(package[manifest["icons"]["outline"]])
    assert (width, height) == (32, 32)
    assert all(p[:3] == (255, 255, 255) for p in outline if p[3]), "the outline icon is white"
    assert outline[0][3] == 0, "the outline icon's background is transparent"
    assert any(p[3] == 255 for p in outline), "the outline icon draws something"


def test_the_package_is_reproducible() -> None:
    assert build_package(APP_ID, "1.0.0") == build_package(APP_ID, "1.0.0")


def test_the_template_ships_in_the_package_with_placeholders_only() -> None:
    template = manifest_template()
    assert template["id"] == template["bots"][0]["botId"] == "{{MicrosoftAppId}}"


@pytest.mark.parametrize(("app_id", "version"), [("nope", "1.0.0"), (APP_ID, "1.0"), (APP_ID, "v1.0.0")])
def test_a_bad_id_or_version_is_refused_with_its_name(app_id: str, version: str) -> None:
    with pytest.raises(PackageError, match=r"--app-id|--version"):
        build_manifest(app_id, version)


def test_the_command_writes_the_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    out = tmp_path / "dist" / "teams.zip"
    assert aftercare(["teams", "package", "--app-id", APP_ID, "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("manifest.json"))["id"] == APP_ID
    assert str(out) in capsys.readouterr().out


def test_the_command_takes_the_app_id_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MicrosoftAppId", APP_ID)
    monkeypatch.setenv("MicrosoftAppType", "UserAssignedMSI")
    assert aftercare(["teams", "package"]) == 0
    with zipfile.ZipFile(tmp_path / "aftercare-teams.zip") as archive:
        assert json.loads(archive.read("manifest.json"))["bots"][0]["botId"] == APP_ID


def test_the_command_without_an_app_id_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MicrosoftAppId", raising=False)
    assert aftercare(["teams", "package"]) == 2
    assert "--app-id is required" in capsys.readouterr().err
    assert not (tmp_path / "aftercare-teams.zip").exists()
