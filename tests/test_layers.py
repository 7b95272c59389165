"""The packages depend on each other one way only, so a newcomer can find the home of any
behaviour from the folder names and the domain can be used without the Bot Framework:

    bot/ (channels, adapter, service, CLI) -> evals/ -> dialogs/ -> providers/ -> shop/
                                                         \\-> prompts/ (data)

Each module's imports (type-only ones included) are read from its source.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What each package may import of the others.
ALLOWED: dict[str, set[str]] = {
    "shop": set(),
    "prompts": set(),
    "providers": {"shop"},
    "dialogs": {"shop", "providers", "prompts"},
    "evals": {"shop", "providers", "prompts", "dialogs"},
    "bot": {"shop", "providers", "prompts", "dialogs", "evals"},
}
# Bot Framework SDKs belong to the service layer alone.
BOT_FRAMEWORK = ("botbuilder", "botframework")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    assert _modules(package), f"{package}/ has no modules"
    wrong = []
    for path in _modules(package):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in ALLOWED and top != package and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
            if package != "bot" and top in BOT_FRAMEWORK:
                wrong.append(f"{path.relative_to(ROOT)} imports the Bot Framework ({name})")
    assert not wrong, "\n".join(wrong)


def test_no_product_module_reads_the_tests() -> None:
    for package in ALLOWED:
        for path in _modules(package):
            text = path.read_text(encoding="utf-8")
            assert '"tests"' not in text and "tests." not in text.replace("tests.py", ""), path
            assert "parents[" not in text, f"{path.relative_to(ROOT)} finds files by climbing folders"
