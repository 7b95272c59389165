"""What the rest of the app needs from a store, as protocols, plus the small helpers
both implementations share.

Two protocols, because they have different readers and different shapes:

- `OrderStore`: customers, orders and products in the retail dataset's own JSON shapes,
  read by the retail service on every turn and written by its order actions.
- `StateStore`: conversation state as opaque JSON documents by key (the Bot Framework
  `Storage` adapter in `bot.state_storage` sits on top of it).

Both hand out an ETag with every read, and every write that presents one is
conditional on it: a stale ETag raises `ConcurrencyConflict` and changes nothing. That
is how two app instances (or two concurrent turns) acting on the same order can never
both succeed.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

JsonDict = dict[str, Any]


class Collection(StrEnum):
    """The three record kinds of the retail dataset; the values are the file stems."""

    CUSTOMERS = "users"
    ORDERS = "orders"
    PRODUCTS = "products"


@dataclass(frozen=True, slots=True)
class Versioned:
    """A document as it was read, with the ETag a conditional write must present."""

    doc: JsonDict
    etag: str


@dataclass(frozen=True, slots=True)
class Record:
    """One dataset entry for a bulk import: its key, its position in the file, its body.

    `seq` is what lets an export write the records back in the file's order: neither
    SQLite rows nor Cosmos DB items have an order of their own.
    """

    key: str
    seq: int
    doc: JsonDict


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long a state store keeps conversation data: the documents whose keys
    `applies_to` accepts expire `max_age_s` after their last write. Every other document
    (signing keys, agent accounts, caches) is configuration and kept until deleted.

    The store takes the policy when it is opened; which keys are conversation data is
    the service's knowledge (`bot.retention`), not the store's.
    """

    max_age_s: int
    applies_to: Callable[[str], bool]


@runtime_checkable
class OrderStore(Protocol):
    """Customers, orders and products, keyed by the dataset's own ids.

    Reads return `None` for a missing key. `put_*` without an ETag is an unconditional
    upsert (import, staff tools); with an ETag it replaces the document only if it is
    unchanged since that read, else raises `ConcurrencyConflict` (also when the document
    has been deleted since). Every method raises `StoreUnavailable` when the backend
    cannot be reached or is throttling.
    """

    async def get_customer(self, user_id: str) -> Versioned | None: ...

    async def get_order(self, order_id: str) -> Versioned | None: ...

    async def get_product(self, product_id: str) -> Versioned | None: ...

    async def put_customer(self, user_id: str, doc: JsonDict, *, etag: str | None = None) -> str:
        """Writes a customer and keeps the email and name+zip lookups in step; returns the new ETag."""
        ...

    async def put_order(self, order_id: str, doc: JsonDict, *, etag: str | None = None) -> str: ...

    async def put_product(self, product_id: str, doc: JsonDict, *, etag: str | None = None) -> str: ...

    async def find_user_id_by_email(self, email: str) -> str | None:
        """The customer whose email matches, ignoring case and surrounding space."""
        ...

    async def find_user_id_by_name_zip(self, first_name: str, last_name: str, zip_code: str) -> str | None:
        """The customer with this name (case-insensitive) and profile address zip."""
        ...

    async def list_product_types(self) -> dict[str, str]:
        """Product name -> product id, sorted by name."""
        ...

    async def import_records(self, collection: Collection, records: Sequence[Record]) -> None:
        """Upserts a batch of dataset records (idempotent: the same batch twice is a no-op)."""
        ...

    def iter_records(self, collection: Collection) -> AsyncIterator[tuple[str, JsonDict]]:
        """Every (key, document) of a collection, in dataset order. For export, not for turns."""
        ...

    async def has_data(self) -> bool:
        """True when at least one order is stored (the seed-on-start check)."""
        ...

    async def ping(self) -> None:
        """Raises `StoreUnavailable` unless the store answers; for readiness probes."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class StateStore(Protocol):
    """JSON documents by key with ETags: conversation state, the Direct Line log, handoffs,
    and the service's own configuration (signing keys, agent accounts).

    `write_state` without an ETag overwrites; with one it replaces only an unchanged
    document and raises `ConcurrencyConflict` on a stale ETag. A conditional write to a
    key that holds nothing creates it: that is what the Bot Framework storages do when a
    conversation was cleared by someone else mid-turn, and `BotFrameworkStorage` relies on it.
    """

    async def read_state(self, key: str) -> Versioned | None:
        """The document and its ETag, or None. The document is parsed afresh on every
        read, so the caller owns it: changing it changes nothing stored or cached."""
        ...

    async def write_state(self, key: str, doc: JsonDict, *, etag: str | None = None) -> str: ...

    async def insert_state(self, key: str, doc: JsonDict) -> str:
        """Creates the document and returns its ETag; `ConcurrencyConflict` when the key
        already holds one (someone else created it first), and then nothing is written."""
        ...

    async def delete_state(self, key: str) -> None:
        """Removes the document; a missing key is not an error."""
        ...

    def iter_state_keys(self, prefix: str) -> AsyncIterator[str]:
        """Every stored key that starts with `prefix` ("" for all), in no particular
        order. A scan, for staff tools (erasing a customer's conversations), not for turns."""
        ...

    async def purge_expired(self) -> int:
        """Deletes the conversation data its retention policy says has expired and returns
        how many documents went. 0 when the store was opened without a policy, and on a
        backend that expires documents itself (Cosmos DB's TTL)."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


def normalize_email(email: str) -> str:
    """The form emails are matched in: customers type them in any case."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


def name_zip_key(first_name: str, last_name: str, zip_code: str) -> str:
    """The form name + zip are matched in (case and repeated spaces ignored)."""

    def clean(part: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", part).casefold().split())

    return f"{clean(first_name)}|{clean(last_name)}|{clean(zip_code)}"


def customer_lookup_keys(doc: JsonDict) -> tuple[str | None, str | None]:
    """(email key, name+zip key) of a customer document; None where a field is missing."""
    email = doc.get("email")
    name = doc.get("name") or {}
    address = doc.get("address") or {}
    email_key = normalize_email(email) if isinstance(email, str) and email else None
    first, last, zip_code = name.get("first_name"), name.get("last_name"), address.get("zip")
    if isinstance(first, str) and isinstance(last, str) and isinstance(zip_code, str):
        return email_key, name_zip_key(first, last, zip_code)
    return email_key, None


def seq_for_new_record() -> int:
    """Position of a document created outside an import: after every imported one.

    Microseconds since the epoch stay far above any dataset index and below 2**53, so
    they survive a trip through JavaScript numbers (the Cosmos DB test server).
    """
    return time.time_ns() // 1000
