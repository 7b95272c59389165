"""`aftercare agents add NAME`: creates a support agent's local account for the console at
/agent. The password is asked twice on the terminal (or read from stdin with
`--password-stdin`, for scripts) and stored only as an argon2 hash."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from bot.handoff.agents import AgentError, Agents
from bot.settings import Settings
from shop.store.factory import open_stores


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agents = subparsers.add_parser("agents", help="support agents of the console at /agent")
    commands = agents.add_subparsers(dest="agents_command", required=True, metavar="{add}")
    add = commands.add_parser("add", help="create an agent account")
    add.add_argument("name", help="sign-in name: lowercase letters, digits, '.', '_' or '-'")
    add.add_argument("--display-name", default="", help="the name customers see (default: the name)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=run_add)


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("aftercare: the two passwords differ", file=sys.stderr)
            return 1

    async def add() -> str:
        stores = await open_stores(settings)
        try:
            account = await Agents(stores.state).add(args.name, password, args.display_name)
        finally:
            await stores.aclose()
        return account.name

    try:
        name = asyncio.run(add())
    except AgentError as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 1
    print(f"agent {name} added; they sign in at /agent")
    return 0
