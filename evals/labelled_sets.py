"""Reading a labelled YAML set (the gate set, the adversarial attempts): each entry
validated into its model, with the file, position and name in the error, and names
unique so a report can refer to an entry by name."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Entry = TypeVar("Entry", bound=BaseModel)


def load_named(path: Path, key: str, model: type[Entry], noun: str) -> list[Entry]:
    """The entries under `key`, each a `model`; `ValueError` naming the `noun` and where."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries: list[Entry] = []
    for index, raw in enumerate(data.get(key, []), start=1):
        try:
            entries.append(model.model_validate(raw))
        except ValidationError as exc:
            raise ValueError(f"{path.name}, {noun} {index} ({raw.get('name')!r}): {exc}") from None
    names = [str(getattr(entry, "name", "")) for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{noun} names must be unique; repeated: {repeated}")
    return entries
