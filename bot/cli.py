"""The `aftercare` command: `serve`, and the staff tools added by other modules."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.settings import Settings, load_settings
from shop.errors import ConfigurationError


class AccessLogger(AbstractAccessLogger):
    """Access lines without query strings: those carry credentials (Direct Line tokens in
    `?t=`, the call webhook's `?secret=`, call tickets that name the caller's number)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.3fs',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )


def serve(settings: Settings) -> None:
    from bot.service import create_app
    from bot.telemetry import configure_logging, install_tracing

    configure_logging(settings)
    tracing = install_tracing(settings)
    logging.getLogger(__name__).info("Aftercare listening on http://%s:%d/", settings.host, settings.port)
    app = create_app(settings)
    app.on_startup.append(_freeze_start_up_objects)
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=None,
            access_log_class=AccessLogger,
        )
    finally:
        if tracing is not None:
            tracing.shutdown()  # flushes the spans still batched


async def _freeze_start_up_objects(app: web.Application) -> None:
    """Runs once everything is loaded (after the cleanup contexts' start-up): what exists
    now (modules, the intent examples, the SDKs' schemas, about 140,000 objects) lives as
    long as the process, so it moves out of the garbage collector's reach. Otherwise
    every full collection walks all of it again, about 80 ms on the event loop each
    time, and the collections that turns trigger cost a tenth of a turn's CPU."""
    gc.collect()
    gc.freeze()


def _serve_command(args: argparse.Namespace, settings: Settings) -> int:
    serve(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aftercare", description="Aftercare customer-support bot")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="serve the bot, Web Chat and Direct Line (as python app.py)"
    )
    serve_parser.set_defaults(handler=_serve_command)
    # Staff tools live beside what they operate on; each module adds its own commands.
    from bot.staff_cli import add_commands as add_store_commands

    add_store_commands(commands)
    from bot.agents_cli import add_commands as add_agent_commands

    add_agent_commands(commands)
    from evals.cli import add_commands as add_dialog_commands

    add_dialog_commands(commands)
    from bot.teams_app.package import add_commands as add_teams_commands

    add_teams_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, load_settings()))
    except ConfigurationError as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
