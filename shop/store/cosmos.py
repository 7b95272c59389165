"""The production store: Azure Cosmos DB through the async SDK (`azure.cosmos.aio`).

Layout (see shop/store/README.md for the reasoning and the RU figures):

- `users`, `orders`, `products`: partition key /id, id = the dataset key. Every read on
  a turn is a point read; order ids come alone (`get_order_details(order_id)`), so
  orders are partitioned by their own id rather than by customer.
- `lookups`: partition key /id. `email-<sha256>` and `namezip-<sha256>` map a
  normalized email / name+zip to a user id; `catalog-product-types` maps product ids to
  names. Customer lookups are two point reads, never a cross-partition query.
- `state`: partition key /id, conversation state documents. TTL is on with no default
  expiry (`defaultTtl: -1`): conversation data is written with a per-item `ttl` (the
  retention policy's age), so Cosmos DB deletes it that long after its last write;
  configuration documents carry none and are kept.

Records keep their JSON as text in `body`: Cosmos DB (and JavaScript, which the test
server runs on) may reorder object keys that look like integers (variant ids do), and
the dataset must export back in its own key order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import aiohttp

from shop import telemetry
from shop.errors import ConcurrencyConflict, ConfigurationError, StoreUnavailable
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

try:
    from azure.core import MatchConditions
    from azure.core.exceptions import AzureError
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.cosmos import PartitionKey, exceptions
    from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy
except ImportError as exc:
    raise ImportError(
        "STORE=cosmos needs the Azure Cosmos DB SDK: install the extra with pip install 'aftercare[cosmos]'"
    ) from exc

log = logging.getLogger(__name__)

_CATALOG_ID = "catalog-product-types"
_SAFE_ID = re.compile(r"[A-Za-z0-9_.\-]")
# Cosmos DB ids may be up to 255 characters; longer keys keep a prefix plus a digest.
_MAX_ID = 255
# A turn should fail fast on a throttled account rather than wait the SDK's default 30 s.
_THROTTLE_RETRIES = 3
_THROTTLE_MAX_WAIT_S = 5
# Import writes in parallel; more than this only queues inside the SDK's connection pool.
_IMPORT_CONCURRENCY = 16


def _indexing_without(path: str) -> dict[str, Any]:
    """Index everything except `path`, which is never queried: cheaper writes."""
    excluded = [{"path": path}, {"path": '/"_etag"/?'}]
    return {"indexingMode": "consistent", "includedPaths": [{"path": "/*"}], "excludedPaths": excluded}


def item_id(key: str) -> str:
    """A Cosmos DB id for any key: '/', '\\\\', '?', '#' are not allowed in ids and order
    ids start with '#', so every other character is written as ~XX (UTF-8 hex)."""
    encoded = "".join(
        ch if _SAFE_ID.fullmatch(ch) else "".join(f"~{b:02X}" for b in ch.encode()) for ch in key
    )
    if len(encoded) <= _MAX_ID:
        return encoded
    # '~~' never comes out of the escaping above ('~' itself becomes ~7E), so this
    # suffix cannot collide with a short key.
    return encoded[:200] + "~~" + hashlib.sha256(key.encode()).hexdigest()[:48]


def _lookup_id(kind: str, value: str) -> str:
    # Hashed: emails and names may hold characters ids cannot, and an id is logged freely.
    return f"{kind}-{hashlib.sha256(value.encode()).hexdigest()[:40]}"


def _lookup_ids(doc: JsonDict) -> list[str]:
    email_key, nz_key = customer_lookup_keys(doc)
    return [_lookup_id(kind, key) for kind, key in (("email", email_key), ("namezip", nz_key)) if key]


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turns SDK and network failures into the app's store errors; traces and counts the call."""
    # The operation's kind, not its key: "read" from orders, not which order.
    kind = what.split(" ")[1] if what.startswith("a ") else "state" if what.startswith("state") else "other"
    with telemetry.span("store.cosmos", **{"db.system": "cosmosdb", "db.operation": kind}) as current:
        outcome = "failed"
        try:
            yield
            outcome = "ok"
        except exceptions.CosmosAccessConditionFailedError as exc:
            outcome = "conflict"
            raise ConcurrencyConflict(f"Etag conflict: precondition is not met for {what}") from exc
        except exceptions.CosmosHttpResponseError as exc:
            telemetry.fail(current, f"HTTP {exc.status_code}")
            raise StoreUnavailable(f"Cosmos DB refused {what} (HTTP {exc.status_code})") from exc
        except (AzureError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            telemetry.fail(current, type(exc).__name__)
            raise StoreUnavailable(f"Cosmos DB is unreachable ({what}): {type(exc).__name__}") from exc
        finally:
            telemetry.STORE_CALLS.labels("cosmos", kind, outcome).inc()


def _env_proxies_for(endpoint: str) -> dict[str, str]:
    """The proxy the HTTP(S)_PROXY / NO_PROXY variables name for `endpoint`, read once."""
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    if not host or urllib.request.proxy_bypass(host):
        return {}
    proxies = urllib.request.getproxies()
    return {scheme: proxies[scheme] for scheme in ("http", "https") if scheme in proxies}


async def _existing_container(db: DatabaseProxy, name: str) -> ContainerProxy:
    """A container the deployment created, read (its metadata: a data-plane role may) to
    fail at start-up rather than on the first turn when it is missing."""
    container = db.get_container_client(name)
    try:
        await container.read()
    except exceptions.CosmosResourceNotFoundError:
        raise ConfigurationError(
            f"COSMOS_CREATE_CONTAINERS=false, but the Cosmos DB container {db.id}/{name} does not "
            "exist: create the database and its containers (deployment/infra does) or unset it"
        ) from None
    return container


class CosmosStore:
    """`OrderStore` and `StateStore` over one Cosmos DB database. Open with `CosmosStore.open`."""

    def __init__(
        self,
        client: CosmosClient,
        database: DatabaseProxy,
        containers: dict[str, ContainerProxy],
        credential: Any = None,
        retention: RetentionPolicy | None = None,
    ) -> None:
        self._client = client
        self._database = database
        self._containers = containers
        self._credential = credential
        self._retention = retention

    @classmethod
    async def open(
        cls,
        endpoint: str,
        key: str,
        database: str,
        *,
        verify_tls: bool = True,
        retention: RetentionPolicy | None = None,
        create_containers: bool = True,
    ) -> CosmosStore:
        """Connects and creates the database and containers when missing.

        `retention`: the state documents written with a `ttl`, and its length. The
        `state` container is created with TTL on and no default expiry; one provisioned
        elsewhere without TTL is used as it is, with a warning, since its items never expire.

        `create_containers=False` (COSMOS_CREATE_CONTAINERS): the deployment owns the
        database and containers (deployment/infra creates them), so they are only read;
        creating them is a control-plane call that a data-plane role is refused.

        An empty key means Entra ID (`DefaultAzureCredential`: managed identity in Azure,
        the developer's login locally). `verify_tls=False` is for a self-signed emulator
        reached by a host name; nothing in the app's settings turns it off. (The SDK
        itself skips verification for localhost and 127.0.0.1, the emulator's addresses.)
        """
        credential: Any = key
        owned_credential = None
        if not key:
            from azure.identity.aio import DefaultAzureCredential

            credential = owned_credential = DefaultAzureCredential()
        client = CosmosClient(
            endpoint,
            credential,
            connection_verify=verify_tls,
            retry_throttle_total=_THROTTLE_RETRIES,
            retry_throttle_backoff_max=_THROTTLE_MAX_WAIT_S,
            # azure-core's default aiohttp session has trust_env on, and aiohttp then runs
            # a ~/.netrc look-up and a proxy-variable look-up on a thread for every
            # request: two thread hops per Cosmos DB operation, several per turn. Netrc
            # credentials never apply (the SDK signs each request itself), and the proxy
            # variables are read once here instead.
            transport=AioHttpTransport(use_env_settings=False),
            proxies=_env_proxies_for(endpoint),
        )
        try:
            with _translated("database set-up"):
                if create_containers:
                    db = await client.create_database_if_not_exists(database)
                else:
                    db = client.get_database_client(database)
                containers = {}
                for name in ("users", "orders", "products", "lookups", "state"):
                    if not create_containers:
                        containers[name] = await _existing_container(db, name)
                        continue
                    policy = _indexing_without("/state/*" if name == "state" else "/body/?")
                    containers[name] = await db.create_container_if_not_exists(
                        name,
                        PartitionKey("/id"),
                        indexing_policy=policy,
                        # -1: TTL on, nothing expires unless an item sets its own `ttl`.
                        default_ttl=-1 if name == "state" else None,
                    )
                if retention is not None:
                    await _warn_without_ttl(containers["state"])
        except BaseException:
            await client.close()
            if owned_credential is not None:
                await owned_credential.close()
            raise
        return cls(client, db, containers, owned_credential, retention)

    async def aclose(self) -> None:
        await self._client.close()
        if self._credential is not None:
            await self._credential.close()

    async def ping(self) -> None:
        with _translated("a readiness check"):
            await self._database.read()

    # -- item plumbing ------------------------------------------------------------------

    async def _read(self, container: str, cosmos_id: str) -> JsonDict | None:
        with _translated(f"a read from {container}"):
            try:
                item: JsonDict = await self._containers[container].read_item(cosmos_id, cosmos_id)
            except exceptions.CosmosResourceNotFoundError:
                return None
        return item

    async def _upsert(self, container: str, item: JsonDict) -> str:
        with _translated(f"a write to {container}"):
            result = await self._containers[container].upsert_item(item)
        return str(result["_etag"])

    async def _delete(self, container: str, cosmos_id: str) -> None:
        with (
            _translated(f"a delete from {container}"),
            contextlib.suppress(exceptions.CosmosResourceNotFoundError),
        ):
            await self._containers[container].delete_item(cosmos_id, cosmos_id)

    async def _patch_body(
        self, collection: Collection, key: str, doc: JsonDict, etag: str, extra: JsonDict
    ) -> str:
        # A patch (not a replace) so the item's seq need not be read first; If-Match
        # makes it conditional exactly like a replace.
        cosmos_id = item_id(key)
        operations = [{"op": "set", "path": "/body", "value": jsondoc.dumps(doc)}]
        operations += [{"op": "set", "path": f"/{name}", "value": value} for name, value in extra.items()]
        with _translated(f"{collection.value} {key}"):
            try:
                result = await self._containers[collection.value].patch_item(
                    cosmos_id, cosmos_id, operations, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            except exceptions.CosmosResourceNotFoundError as exc:
                raise ConcurrencyConflict(f"{collection.value} {key} was deleted since it was read") from exc
        return str(result["_etag"])

    @staticmethod
    def _derived(collection: Collection, doc: JsonDict) -> JsonDict:
        """Fields kept beside the body: what lookups and partition-free listing need."""
        if collection is Collection.CUSTOMERS:
            return {"lookup_ids": _lookup_ids(doc)}
        if collection is Collection.ORDERS:
            return {"user_id": doc.get("user_id")}
        return {}

    def _record_item(self, collection: Collection, key: str, seq: int, doc: JsonDict) -> JsonDict:
        body = jsondoc.dumps(doc)
        return {"id": item_id(key), "key": key, "seq": seq, "body": body, **self._derived(collection, doc)}

    async def _put(
        self, collection: Collection, key: str, doc: JsonDict, etag: str | None, current: JsonDict | None
    ) -> str:
        """Conditional patch with an ETag; otherwise an upsert keeping the stored `seq`."""
        if etag is not None:
            return await self._patch_body(collection, key, doc, etag, self._derived(collection, doc))
        seq = int(current["seq"]) if current else seq_for_new_record()
        return await self._upsert(collection.value, self._record_item(collection, key, seq, doc))

    async def _get(self, collection: Collection, key: str) -> Versioned | None:
        item = await self._read(collection.value, item_id(key))
        if item is None:
            return None
        return Versioned(jsondoc.loads(item["body"]), str(item["_etag"]))

    # -- records ---------------------------------------------------------------------------

    async def get_customer(self, user_id: str) -> Versioned | None:
        return await self._get(Collection.CUSTOMERS, user_id)

    async def get_order(self, order_id: str) -> Versioned | None:
        return await self._get(Collection.ORDERS, order_id)

    async def get_product(self, product_id: str) -> Versioned | None:
        return await self._get(Collection.PRODUCTS, product_id)

    async def put_customer(self, user_id: str, doc: JsonDict, *, etag: str | None = None) -> str:
        # Read first: the stored lookup ids say whether email or name+zip changed, and
        # saves rewriting two lookup documents on every gift-card balance change.
        current = await self._read("users", item_id(user_id))
        if etag is not None and (current is None or current["_etag"] != etag):
            raise ConcurrencyConflict(f"Etag conflict: precondition is not met for customer {user_id}")
        new_etag = await self._put(Collection.CUSTOMERS, user_id, doc, etag, current)
        new_ids = _lookup_ids(doc)
        old_ids = list(current.get("lookup_ids", [])) if current else []
        if new_ids != old_ids:
            await self._write_lookups(user_id, new_ids)
            for stale in set(old_ids) - set(new_ids):
                await self._delete("lookups", stale)
        return new_etag

    async def put_order(self, order_id: str, doc: JsonDict, *, etag: str | None = None) -> str:
        current = None if etag is not None else await self._read("orders", item_id(order_id))
        return await self._put(Collection.ORDERS, order_id, doc, etag, current)

    async def put_product(self, product_id: str, doc: JsonDict, *, etag: str | None = None) -> str:
        current = None if etag is not None else await self._read("products", item_id(product_id))
        new_etag = await self._put(Collection.PRODUCTS, product_id, doc, etag, current)
        await self._update_catalog({product_id: str(doc.get("name", ""))})
        return new_etag

    async def _write_lookups(self, user_id: str, ids: Sequence[str]) -> None:
        for lookup in ids:
            await self._upsert("lookups", {"id": lookup, "user_id": user_id})

    async def _update_catalog(self, names: dict[str, str]) -> None:
        # Read-modify-write with the ETag: two processes adding products must not drop
        # each other's entries. Three tries is plenty for an admin-only write.
        for _ in range(3):
            current = await self._read("lookups", _CATALOG_ID)
            catalog = dict(current.get("products", {})) if current else {}
            catalog.update(names)
            item = {"id": _CATALOG_ID, "products": catalog}
            container = self._containers["lookups"]
            with _translated("the product catalog"):
                try:
                    if current is None:
                        await container.create_item(item)
                    else:
                        await container.replace_item(
                            _CATALOG_ID,
                            item,
                            etag=current["_etag"],
                            match_condition=MatchConditions.IfNotModified,
                        )
                    return
                except (exceptions.CosmosAccessConditionFailedError, exceptions.CosmosResourceExistsError):
                    continue
        raise ConcurrencyConflict("the product catalog kept changing while it was being updated")

    async def _find_via_lookup(self, lookup: str, matches: Callable[[JsonDict], bool]) -> str | None:
        entry = await self._read("lookups", lookup)
        if entry is None:
            return None
        user_id = str(entry["user_id"])
        customer = await self.get_customer(user_id)
        # The lookup is a hint: confirm against the customer so a stale entry (email or
        # address changed, customer removed) never identifies the wrong person.
        if customer is None or not matches(customer.doc):
            return None
        return user_id

    async def find_user_id_by_email(self, email: str) -> str | None:
        wanted = normalize_email(email)
        return await self._find_via_lookup(
            _lookup_id("email", wanted), lambda doc: customer_lookup_keys(doc)[0] == wanted
        )

    async def find_user_id_by_name_zip(self, first_name: str, last_name: str, zip_code: str) -> str | None:
        wanted = name_zip_key(first_name, last_name, zip_code)
        return await self._find_via_lookup(
            _lookup_id("namezip", wanted), lambda doc: customer_lookup_keys(doc)[1] == wanted
        )

    async def list_product_types(self) -> dict[str, str]:
        catalog = await self._read("lookups", _CATALOG_ID)
        products: dict[str, str] = catalog.get("products", {}) if catalog else {}
        return dict(sorted((name, product_id) for product_id, name in products.items() if name))

    async def import_records(self, collection: Collection, records: Sequence[Record]) -> None:
        gate = asyncio.Semaphore(_IMPORT_CONCURRENCY)

        async def one(record: Record) -> None:
            item = self._record_item(collection, record.key, record.seq, record.doc)
            async with gate:
                await self._upsert(collection.value, item)
                if collection is Collection.CUSTOMERS:
                    await self._write_lookups(record.key, item["lookup_ids"])

        await _run_all([one(record) for record in records])
        if collection is Collection.PRODUCTS and records:
            await self._update_catalog({r.key: str(r.doc.get("name", "")) for r in records})

    async def iter_records(self, collection: Collection) -> AsyncIterator[tuple[str, JsonDict]]:
        # Cross-partition and sorted here: export is an offline job, never on a turn,
        # and ORDER BY across partitions would need a composite index for nothing.
        with _translated(f"an export of {collection.value}"):
            rows = [
                row
                async for row in self._containers[collection.value].query_items(
                    'SELECT c["key"], c.seq, c.body FROM c', max_item_count=1000
                )
            ]
        rows.sort(key=lambda row: (row["seq"], row["key"]))
        for row in rows:
            yield str(row["key"]), jsondoc.loads(row["body"])

    async def has_data(self) -> bool:
        with _translated("the seed check"):
            async for _ in self._containers["orders"].query_items(
                "SELECT TOP 1 c.id FROM c", max_item_count=1
            ):
                return True
        return False

    # -- conversation state ---------------------------------------------------------------

    def _state_item(self, key: str, doc: JsonDict) -> JsonDict:
        item: JsonDict = {"id": item_id(key), "key": key, "state": doc}
        if self._retention is not None and self._retention.applies_to(key):
            # Seconds after the item's last write (its _ts) that Cosmos DB deletes it.
            item["ttl"] = self._retention.max_age_s
        return item

    async def read_state(self, key: str) -> Versioned | None:
        item = await self._read("state", item_id(key))
        if item is None:
            return None
        return Versioned(dict(item["state"]), str(item["_etag"]))

    async def write_state(self, key: str, doc: JsonDict, *, etag: str | None = None) -> str:
        item = self._state_item(key, doc)
        cosmos_id = item["id"]
        if etag is None:
            return await self._upsert("state", item)
        container = self._containers["state"]
        what = f"state {key!r}"
        with _translated(what):
            try:
                result = await container.replace_item(
                    cosmos_id, item, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            except exceptions.CosmosResourceNotFoundError:
                try:
                    result = await container.create_item(item)
                except exceptions.CosmosResourceExistsError as exc:
                    raise ConcurrencyConflict(f"Etag conflict: precondition is not met for {what}") from exc
        return str(result["_etag"])

    async def insert_state(self, key: str, doc: JsonDict) -> str:
        item = self._state_item(key, doc)
        with _translated(f"state {key!r}"):
            try:
                result = await self._containers["state"].create_item(item)
            except exceptions.CosmosResourceExistsError as exc:
                raise ConcurrencyConflict(f"state {key!r} already exists") from exc
        return str(result["_etag"])

    async def delete_state(self, key: str) -> None:
        await self._delete("state", item_id(key))

    async def iter_state_keys(self, prefix: str) -> AsyncIterator[str]:
        # Cross-partition, page by page: a staff scan, never on a turn. `key` is indexed.
        with _translated("a listing of state keys"):
            async for row in self._containers["state"].query_items(
                'SELECT c["key"] FROM c WHERE STARTSWITH(c["key"], @prefix)',
                parameters=[{"name": "@prefix", "value": prefix}],
                max_item_count=1000,
            ):
                yield str(row["key"])

    async def purge_expired(self) -> int:
        # Nothing to do: Cosmos DB deletes items whose `ttl` has run out by itself.
        return 0


async def _warn_without_ttl(state: ContainerProxy) -> None:
    properties = await state.read()
    if "defaultTtl" not in properties:
        log.warning(
            "the Cosmos DB container %s has TTL off: conversation data will not expire. "
            "Turn TTL on with no default (defaultTtl -1) in the portal or the Bicep template",
            properties.get("id", "state"),
        )


async def _run_all(jobs: Sequence[Awaitable[None]]) -> None:
    """Runs jobs together; on the first failure cancels the rest and raises it."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
