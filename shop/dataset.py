"""Import the retail dataset (users.json, orders.json, products.json; by default
the demo shop shipped in `shop/data/retail`) into an order store, and export a store
back to the same three files.

The files are JSON objects keyed by id. An import keeps each record's position (its
`seq`), so an export writes the records back in the file's order with every key and
list in its original order: import followed by export reproduces the input value for
value. Importing twice is harmless (records are upserted by id).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from tqdm import tqdm

from shop.store.base import Collection, JsonDict, OrderStore, Record

# The demo shop's data, shipped inside this package (see its README and LICENSE), found
# through the package so an installed wheel has it wherever it lives.
SHIPPED_DATASET_DIR = Path(str(files("shop").joinpath("data", "retail")))

# Records per store call: big enough to amortise a SQLite transaction, small enough
# for the progress bar to move.
_BATCH = 100


def _read_json(path: Path) -> dict[str, JsonDict]:
    with path.open(encoding="utf-8") as file:
        data: Any = json.load(file)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path} is not a JSON object of records keyed by id")
    return data


def _batches(records: dict[str, JsonDict]) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for seq, (key, doc) in enumerate(records.items()):
        batch.append(Record(key=key, seq=seq, doc=doc))
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def import_dataset(store: OrderStore, source_dir: Path | str, progress: bool = True) -> dict[str, int]:
    """Loads the three files from `source_dir` into `store`; returns records per file stem.

    Every file is read and checked before anything is written, so a missing or broken
    file leaves the store untouched.
    """
    source = Path(source_dir)
    loaded: dict[Collection, dict[str, JsonDict]] = {}
    for collection in Collection:
        # json.load of a 2 MB file would stall the event loop; read it on a thread.
        loaded[collection] = await asyncio.to_thread(_read_json, source / f"{collection.value}.json")
    total = sum(len(records) for records in loaded.values())
    with tqdm(total=total, unit="record", desc="import", disable=not progress) as bar:
        for collection, records in loaded.items():
            bar.set_postfix_str(collection.value)
            for batch in _batches(records):
                await store.import_records(collection, batch)
                bar.update(len(batch))
    return {collection.value: len(records) for collection, records in loaded.items()}


def _write_json_atomically(path: Path, data: dict[str, JsonDict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename, so a failed export never leaves half a file.
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=4, ensure_ascii=False)
            file.write("\n")
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


async def export_dataset(store: OrderStore, target_dir: Path | str) -> dict[str, int]:
    """Writes users.json, orders.json and products.json of `store` into `target_dir`."""
    target = Path(target_dir)
    counts: dict[str, int] = {}
    for collection in Collection:
        records = {key: doc async for key, doc in store.iter_records(collection)}
        await asyncio.to_thread(_write_json_atomically, target / f"{collection.value}.json", records)
        counts[collection.value] = len(records)
    return counts
