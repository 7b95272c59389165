"""Staff commands for the data layer, mounted under the `aftercare` console script:

    aftercare data import [--source DIR]     load users/orders/products.json into the store
    aftercare data export --target DIR       write the store back to those three files
    aftercare data forget --customer ID      erase a customer's conversations (orders are kept)
    aftercare actions apply FILE             run order actions from JSON lines ('-' = stdin)

`bot.cli` calls `add_commands`; each subcommand sets `handler(args, settings) -> int`,
the process exit code. Output is JSON lines on stdout, so it can be piped and diffed.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from bot.retention import Erased, forget_customer
from bot.settings import Settings
from dialogs.tools.catalog import ALL_TOOLS
from shop.dataset import export_dataset, import_dataset
from shop.errors import AftercareError
from shop.retail import RetailService
from shop.store.factory import Stores, open_stores, seed_if_empty

T = TypeVar("T")

# Exit codes: 0 when every line was a well-formed action (the rules may still have
# refused some: that is reported on the line, not in the code); 1 when a file or a line
# could not be read as an action (not JSON, unknown name, arguments that do not fit),
# or the store could not be opened. Later lines still run after a bad one.
EXIT_OK = 0
EXIT_BAD_INPUT = 1
# `data forget` for a customer id the store does not know: nothing was erased.
EXIT_UNKNOWN_CUSTOMER = 2


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the `data` and `actions` subcommands to the app's argument parser."""
    data = subparsers.add_parser("data", help="import or export the retail dataset, or forget a customer")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="{import,export,forget}")
    load = data_commands.add_parser("import", help="load users.json, orders.json and products.json")
    load.add_argument(
        "--source", type=Path, default=None, help="folder of the three files (default: DATASET_DIR)"
    )
    load.set_defaults(handler=run_import)
    dump = data_commands.add_parser(
        "export", help="write the store back to users.json, orders.json, products.json"
    )
    dump.add_argument("--target", type=Path, required=True, help="folder to write the three files into")
    dump.set_defaults(handler=run_export)
    forget = data_commands.add_parser(
        "forget",
        help="erase one customer's conversations (state, Direct Line log, handoffs); orders are kept",
    )
    forget.add_argument("--customer", required=True, metavar="USER_ID", help="the customer's user id")
    forget.set_defaults(handler=run_forget)

    actions = subparsers.add_parser("actions", help="run order actions with the retail rules")
    action_commands = actions.add_subparsers(dest="actions_command", required=True, metavar="{apply}")
    apply = action_commands.add_parser(
        "apply", help='apply JSON lines {"name": ..., "kwargs": {...}} in order; prints one result line each'
    )
    apply.add_argument("file", help="the JSON-lines file, or - for stdin")
    apply.set_defaults(handler=run_actions)


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _fail(message: str) -> int:
    sys.stderr.write(f"aftercare: {message}\n")
    return EXIT_BAD_INPUT


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    source = args.source or settings.dataset_dir

    async def work(stores: Stores) -> dict[str, int]:
        return await import_dataset(stores.orders, source, progress=True)

    try:
        counts = asyncio.run(_with_stores(settings, work))
    except (OSError, ValueError) as exc:
        return _fail(f"cannot import from {source}: {exc}")
    except AftercareError as exc:
        return _fail(str(exc))
    _emit({"imported": counts, "source": str(source)})
    return EXIT_OK


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    async def work(stores: Stores) -> dict[str, int]:
        return await export_dataset(stores.orders, args.target)

    try:
        counts = asyncio.run(_with_stores(settings, work))
    except OSError as exc:
        return _fail(f"cannot export to {args.target}: {exc}")
    except AftercareError as exc:
        return _fail(str(exc))
    _emit({"exported": counts, "target": str(args.target)})
    return EXIT_OK


def run_forget(args: argparse.Namespace, settings: Settings) -> int:
    """A privacy request: every conversation the customer was verified in is erased.
    Their orders and customer record stay (the shop must keep them for tax)."""
    user_id = args.customer

    async def work(stores: Stores) -> tuple[Erased, int] | None:
        customer = await stores.orders.get_customer(user_id)
        if customer is None:
            return None
        return await forget_customer(stores.state, user_id), len(customer.doc.get("orders", []))

    try:
        outcome = asyncio.run(_with_stores(settings, work))
    except AftercareError as exc:
        return _fail(str(exc))
    if outcome is None:
        sys.stderr.write(f"aftercare: no customer with id {user_id!r}; nothing was erased\n")
        return EXIT_UNKNOWN_CUSTOMER
    erased, orders = outcome
    _emit(
        {
            "forgotten": user_id,
            "erased": vars(erased),
            "kept": f"the customer record and {orders} orders (the shop keeps them for tax records)",
        }
    )
    return EXIT_OK


def run_actions(args: argparse.Namespace, settings: Settings) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {args.file}: {exc}")

    async def work(stores: Stores) -> int:
        if settings.seed_on_start:
            await seed_if_empty(stores.orders, settings.dataset_dir)
        return await apply_actions(RetailService(stores.orders), text.splitlines())

    try:
        return asyncio.run(_with_stores(settings, work))
    except AftercareError as exc:
        return _fail(str(exc))


async def apply_actions(service: RetailService, lines: list[str]) -> int:
    """Applies each JSON line in order, printing one result line per line; returns the
    exit code (see EXIT_BAD_INPUT)."""
    code = EXIT_OK
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            name, kwargs = _parse_action(line)
        except ValueError as exc:
            _emit({"line": number, "ok": False, "error": f"unreadable action: {exc}"})
            code = EXIT_BAD_INPUT
            continue
        method = getattr(service, name)
        try:
            # Bind first: a wrong argument is the input's fault and is reported as such,
            # while a TypeError from inside the rules would be a bug and must surface.
            inspect.signature(method).bind(**kwargs)
        except TypeError as exc:
            _emit(
                {
                    "line": number,
                    "name": name,
                    "ok": False,
                    "error": f"unreadable action: bad arguments: {exc}",
                }
            )
            code = EXIT_BAD_INPUT
            continue
        try:
            result = await method(**kwargs)
        except AftercareError as exc:
            _emit(
                {
                    "line": number,
                    "name": name,
                    "ok": False,
                    "error": str(exc),
                    "error_type": type(exc).__name__,
                }
            )
            continue
        _emit({"line": number, "name": name, "ok": True, "result": result})
    return code


# The tools that are the shop's own rules (not the dialogs' policy search or handoff),
# run here as staff, without a verified customer.
STAFF_ACTIONS = tuple(tool.name for tool in ALL_TOOLS if callable(getattr(RetailService, tool.name, None)))


def _parse_action(line: str) -> tuple[str, dict[str, Any]]:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(entry, dict):
        raise ValueError('expected an object {"name": ..., "kwargs": {...}}')
    name, kwargs = entry.get("name"), entry.get("kwargs", {})
    if not isinstance(name, str) or name not in STAFF_ACTIONS:
        raise ValueError(f"unknown action {name!r}; known: {', '.join(STAFF_ACTIONS)}")
    if not isinstance(kwargs, dict):
        raise ValueError("kwargs must be an object")
    return name, kwargs


async def _with_stores(settings: Settings, work: Callable[[Stores], Awaitable[T]]) -> T:
    stores = await open_stores(settings)
    try:
        return await work(stores)
    finally:
        await stores.aclose()
