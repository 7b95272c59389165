"""The embedded store: one SQLite file (aiosqlite), for local use and the test suite.

Each record is a row holding its JSON text verbatim (so key order survives a round
trip), its dataset position `seq`, an opaque ETag, and the columns the turn path looks
things up by (email, name+zip, product name), each indexed. Conditional writes are a
single `UPDATE ... WHERE etag = ?`, which SQLite applies atomically.

One connection per store: aiosqlite runs its statements one at a time on a worker
thread, so the event loop never blocks on disk. WAL mode lets a CLI process read while
the app writes.

State rows carry the time of their last write (`written_at`, seconds since the epoch),
so `purge_expired` can delete the conversation data a `RetentionPolicy` says has
expired; the app runs it periodically (SQLite has no TTL of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from shop import telemetry
from shop.errors import ConcurrencyConflict, StoreUnavailable
from shop.store import jsondoc
from shop.store.base import (
    Collection,
    JsonDict,
    Record,
    RetentionPolicy,
    Versioned,
    customer_lookup_keys,
    name_zip_key,
    normalize_email,
    seq_for_new_record,
)

# Extra columns per table: derived from the document on every write, never by callers.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL, etag TEXT NOT NULL,
    email_key TEXT, name_zip_key TEXT);
CREATE INDEX IF NOT EXISTS users_email ON users (email_key);
CREATE INDEX IF NOT EXISTS users_name_zip ON users (name_zip_key);
CREATE INDEX IF NOT EXISTS users_seq ON users (seq);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL, etag TEXT NOT NULL, user_id TEXT);
CREATE INDEX IF NOT EXISTS orders_seq ON orders (seq);
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL, etag TEXT NOT NULL, name TEXT);
CREATE INDEX IF NOT EXISTS products_seq ON products (seq);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY, body TEXT NOT NULL, etag TEXT NOT NULL, written_at REAL NOT NULL);
"""
# After the migration below: a file from before `written_at` has no column to index yet.
_STATE_INDEX = "CREATE INDEX IF NOT EXISTS state_written_at ON state (written_at)"
# Expired keys deleted per statement (SQLite allows 32,766 parameters; a short write lock).
_PURGE_BATCH = 500


def _new_etag() -> str:
    # Random rather than a counter: a deleted and re-created row never reuses an ETag.
    return uuid.uuid4().hex


def _derived(collection: Collection, doc: JsonDict) -> dict[str, Any]:
    if collection is Collection.CUSTOMERS:
        email_key, nz_key = customer_lookup_keys(doc)
        return {"email_key": email_key, "name_zip_key": nz_key}
    if collection is Collection.ORDERS:
        return {"user_id": doc.get("user_id")}
    return {"name": doc.get("name")}


def _dumps(doc: JsonDict) -> str:
    return jsondoc.dumps(doc)


class SqliteStore:
    """`OrderStore` and `StateStore` over one SQLite file. Open with `SqliteStore.open(path)`."""

    def __init__(
        self,
        connection: aiosqlite.Connection,
        *,
        retention: RetentionPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = connection
        self._retention = retention
        self._clock = clock
        # Imports open an explicit transaction on the shared connection; two at once
        # would nest BEGINs, so they take turns.
        self._import_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        retention: RetentionPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> SqliteStore:
        """Opens (and creates or upgrades) the file. `retention`: which state documents
        `purge_expired` deletes, and when; `clock`: seconds since the epoch (tests fake it)."""
        target = str(path)
        if target != ":memory:":
            await asyncio.to_thread(Path(target).parent.mkdir, parents=True, exist_ok=True)
        try:
            # isolation_level=None: autocommit, so each conditional UPDATE is its own
            # transaction and imports open theirs explicitly.
            connection = await aiosqlite.connect(target, isolation_level=None)
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA synchronous=NORMAL")
            await connection.execute("PRAGMA busy_timeout=5000")
            await connection.executescript(_SCHEMA)
            await _add_written_at(connection, clock())
            await connection.execute(_STATE_INDEX)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the SQLite store at {target}: {exc}") from exc
        return cls(connection, retention=retention, clock=clock)

    async def aclose(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        try:
            await self._db.execute_fetchall("SELECT 1")
        except (sqlite3.Error, ValueError) as exc:  # ValueError: the connection is closed
            raise StoreUnavailable(f"the SQLite store does not answer: {exc}") from exc

    # -- records -------------------------------------------------------------------

    async def _get(self, collection: Collection, key: str) -> Versioned | None:
        rows = await self._query(f"SELECT body, etag FROM {collection.value} WHERE id = ?", (key,))
        if not rows:
            return None
        body, etag = rows[0]
        return Versioned(jsondoc.loads(body), etag)

    async def _put(self, collection: Collection, key: str, doc: JsonDict, etag: str | None) -> str:
        table = collection.value
        derived = _derived(collection, doc)
        new_etag = _new_etag()
        assignments = ", ".join(f"{column} = ?" for column in derived)
        values = (_dumps(doc), new_etag, *derived.values())
        if etag is not None:
            cursor = await self._execute(
                f"UPDATE {table} SET body = ?, etag = ?, {assignments} WHERE id = ? AND etag = ?",
                (*values, key, etag),
            )
            if cursor.rowcount != 1:
                raise ConcurrencyConflict(f"{collection.value} {key} changed since it was read")
            return new_etag
        columns = ", ".join(derived)
        placeholders = ", ".join("?" for _ in derived)
        await self._execute(
            f"INSERT INTO {table} (id, seq, body, etag, {columns}) VALUES (?, ?, ?, ?, {placeholders}) "
            f"ON CONFLICT (id) DO UPDATE SET body = excluded.body, etag = excluded.etag, {assignments}",
            (key, seq_for_new_record(), *values, *derived.values()),
        )
        return new_etag

    async def get_customer(self, user_id: str) -> Versioned | None:
        return await self._get(Collection.CUSTOMERS, user_id)

    async def get_order(self, order_id: str) -> Versioned | None:
        return await self._get(Collection.ORDERS, order_id)

    async def get_product(self, product_id: str) -> Versioned | None:
        return await self._get(Collection.PRODUCTS, product_id)

    async def put_customer(self, user_id: str, doc: JsonDict, *, etag: str | None = None) -> str:
        return await self._put(Collection.CUSTOMERS, user_id, doc, etag)

    async def put_order(self, order_id: str, doc: JsonDict, *, etag: str | None = None) -> str:
        return await self._put(Collection.ORDERS, order_id, doc, etag)

    async def put_product(self, product_id: str, doc: JsonDict, *, etag: str | None = None) -> str:
        return await self._put(Collection.PRODUCTS, product_id, doc, etag)

    async def find_user_id_by_email(self, email: str) -> str | None:
        rows = await self._query(
            "SELECT id FROM users WHERE email_key = ? ORDER BY seq LIMIT 1", (normalize_email(email),)
        )
        return str(rows[0][0]) if rows else None

    async def find_user_id_by_name_zip(self, first_name: str, last_name: str, zip_code: str) -> str | None:
        rows = await self._query(
            "SELECT id FROM users WHERE name_zip_key = ? ORDER BY seq LIMIT 1",
            (name_zip_key(first_name, last_name, zip_code),),
        )
        return str(rows[0][0]) if rows else None

    async def list_product_types(self) -> dict[str, str]:
        rows = await self._query("SELECT name, id FROM products WHERE name IS NOT NULL ORDER BY seq")
        return dict(sorted((str(name), str(key)) for name, key in rows))

    async def import_records(self, collection: Collection, records: Sequence[Record]) -> None:
        if not records:
            return
        table = collection.value
        first = _derived(collection, records[0].doc)
        columns = ", ".join(first)
        placeholders = ", ".join("?" for _ in first)
        updates = ", ".join(f"{column} = excluded.{column}" for column in first)
        rows = [
            (r.key, r.seq, _dumps(r.doc), _new_etag(), *_derived(collection, r.doc).values()) for r in records
        ]
        sql = (
            f"INSERT INTO {table} (id, seq, body, etag, {columns}) VALUES (?, ?, ?, ?, {placeholders}) "
            f"ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, body = excluded.body, "
            f"etag = excluded.etag, {updates}"
        )
        async with self._import_lock:
            try:
                # One transaction per batch: a thousand autocommits would each sync the WAL.
                await self._db.execute("BEGIN")
                await self._db.executemany(sql, rows)
                await self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                await self._rollback()
                raise StoreUnavailable(f"SQLite import into {table} failed: {exc}") from exc

    async def iter_records(self, collection: Collection) -> AsyncIterator[tuple[str, JsonDict]]:
        rows = await self._query(f"SELECT id, body FROM {collection.value} ORDER BY seq, id")
        for key, body in rows:
            yield str(key), jsondoc.loads(body)

    async def has_data(self) -> bool:
        return bool(await self._query("SELECT 1 FROM orders LIMIT 1"))

    # -- conversation state ----------------------------------------------------------

    async def read_state(self, key: str) -> Versioned | None:
        rows = await self._query("SELECT body, etag FROM state WHERE key = ?", (key,))
        if not rows:
            return None
        return Versioned(jsondoc.loads(rows[0][0]), str(rows[0][1]))

    async def write_state(self, key: str, doc: JsonDict, *, etag: str | None = None) -> str:
        new_etag = _new_etag()
        row = (key, _dumps(doc), new_etag, self._clock())
        upsert = (
            "INSERT INTO state (key, body, etag, written_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET body = excluded.body, etag = excluded.etag, "
            "written_at = excluded.written_at"
        )
        if etag is None:
            await self._execute(upsert, row)
            return new_etag
        # Conditional: insert when absent, replace only when the ETag still matches.
        cursor = await self._execute(upsert + " WHERE state.etag = ?", (*row, etag))
        if cursor.rowcount != 1:
            raise ConcurrencyConflict(f"Etag conflict: precondition is not met for state {key!r}")
        return new_etag

    async def insert_state(self, key: str, doc: JsonDict) -> str:
        new_etag = _new_etag()
        cursor = await self._execute(
            "INSERT INTO state (key, body, etag, written_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            (key, _dumps(doc), new_etag, self._clock()),
        )
        if cursor.rowcount != 1:
            raise ConcurrencyConflict(f"state {key!r} already exists")
        return new_etag

    async def delete_state(self, key: str) -> None:
        await self._execute("DELETE FROM state WHERE key = ?", (key,))

    async def iter_state_keys(self, prefix: str) -> AsyncIterator[str]:
        rows = await self._query(
            "SELECT key FROM state WHERE substr(key, 1, ?) = ? ORDER BY key", (len(prefix), prefix)
        )
        for (key,) in rows:
            yield str(key)

    async def purge_expired(self) -> int:
        if self._retention is None:
            return 0
        cutoff = self._clock() - self._retention.max_age_s
        rows = await self._query("SELECT key FROM state WHERE written_at < ?", (cutoff,))
        expired = [str(key) for (key,) in rows if self._retention.applies_to(str(key))]
        purged = 0
        for start in range(0, len(expired), _PURGE_BATCH):
            batch = expired[start : start + _PURGE_BATCH]
            # The cutoff again: a conversation written to since the SELECT is kept.
            cursor = await self._execute(
                f"DELETE FROM state WHERE key IN ({', '.join('?' for _ in batch)}) AND written_at < ?",
                (*batch, cutoff),
            )
            purged += cursor.rowcount
        return purged

    # -- plumbing ----------------------------------------------------------------------

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with telemetry.span("store.read", **{"db.system": "sqlite", "db.statement": sql}) as current:
            try:
                rows = list(await self._db.execute_fetchall(sql, params))
            except (sqlite3.Error, ValueError) as exc:
                telemetry.STORE_CALLS.labels("sqlite", "read", "failed").inc()
                telemetry.fail(current, type(exc).__name__)
                raise StoreUnavailable(f"SQLite read failed: {exc}") from exc
            telemetry.STORE_CALLS.labels("sqlite", "read", "ok").inc()
            return rows

    async def _execute(self, sql: str, params: Sequence[Any]) -> aiosqlite.Cursor:
        # The statement, never its parameters: those hold what customers wrote.
        with telemetry.span("store.write", **{"db.system": "sqlite", "db.statement": sql}) as current:
            try:
                cursor = await self._db.execute(sql, params)
            except (sqlite3.Error, ValueError) as exc:
                telemetry.STORE_CALLS.labels("sqlite", "write", "failed").inc()
                telemetry.fail(current, type(exc).__name__)
                raise StoreUnavailable(f"SQLite write failed: {exc}") from exc
            telemetry.STORE_CALLS.labels("sqlite", "write", "ok").inc()
            return cursor

    async def _rollback(self) -> None:
        # Fails only when no transaction is open, and then there is nothing to undo.
        with contextlib.suppress(sqlite3.Error):
            await self._db.execute("ROLLBACK")


async def _add_written_at(connection: aiosqlite.Connection, now: float) -> None:
    """Upgrades a file from before retention: adds `state.written_at`, and its rows count
    as written now (their real age is unknown; they expire one retention period from here)."""

    async def missing() -> bool:
        columns = await connection.execute_fetchall("PRAGMA table_info(state)")
        return "written_at" not in {row[1] for row in columns}

    if not await missing():
        return
    # IMMEDIATE takes the write lock before the second look, so of two processes opening
    # the same old file at once exactly one adds the column.
    await connection.execute("BEGIN IMMEDIATE")
    try:
        if await missing():
            # ALTER TABLE needs a default for a NOT NULL column; every write sets it anyway.
            await connection.execute("ALTER TABLE state ADD COLUMN written_at REAL NOT NULL DEFAULT 0")
            await connection.execute("UPDATE state SET written_at = ?", (now,))
        await connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            await connection.execute("ROLLBACK")
        raise
