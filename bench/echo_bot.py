"""The baseline for `bench.turns`: a stock BotBuilder echo bot behind the same Direct Line.

Stock means what the BotBuilder samples run: a plain `CloudAdapter` and an
`ActivityHandler` that echoes, nothing else. Only the channel in front (the app's own
Direct Line and Bot Connector endpoints) is shared with Aftercare, so the two are
compared on the same transport.

Run: `python -m bench.echo_bot --port 3979`
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity

from bot.channels.connector import ConnectorEndpoint
from bot.channels.directline import BotDelivery, DirectLineService
from bot.channels.http import deferred_routes
from bot.channels.tokens import TokenSigner
from bot.channels.webchat import WebChatPage
from bot.http_errors import error_middleware
from bot.service import CONNECTOR, DIRECTLINE, WEBCHAT
from shop.store.sqlite import SqliteStore


class EchoBot(ActivityHandler):
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(MessageFactory.text(f"Echo: {turn_context.activity.text}"))


def create_echo_app() -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(SimpleNamespace()))
    bot = EchoBot()

    async def run(raw: dict[str, Any], deliver: BotDelivery) -> None:
        # Stock: the adapter authenticates (anonymously) and replies over HTTP to the
        # activity's serviceUrl, the Bot Connector endpoint; `deliver` goes unused.
        await adapter.process_activity("", Activity().deserialize(raw), bot.on_turn)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    # The same channel, built the same way as Aftercare's (its routes served by the
    # objects built once the durable Direct Line log is open), so the transport costs the same.
    app.add_routes([web.get("/healthz", healthz)])
    app.add_routes(deferred_routes(DIRECTLINE, DirectLineService.ROUTES))
    app.add_routes(deferred_routes(CONNECTOR, ConnectorEndpoint.ROUTES))
    app.add_routes(deferred_routes(WEBCHAT, WebChatPage.ROUTES))

    async def conversation_log(app: web.Application) -> AsyncIterator[None]:
        with tempfile.TemporaryDirectory() as folder:
            store = await SqliteStore.open(Path(folder) / "echo.sqlite3")
            directline = DirectLineService(
                TokenSigner("", 1800), store, run, bot_id="echo-bot", bot_name="Echo"
            )
            app[DIRECTLINE] = directline
            app[CONNECTOR] = ConnectorEndpoint(directline)
            app[WEBCHAT] = WebChatPage(directline, Path("node_modules/botframework-webchat/dist/webchat.js"))
            yield
            await directline.aclose()
            await store.aclose()

    app.cleanup_ctx.append(conversation_log)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3979)
    args = parser.parse_args()
    web.run_app(create_echo_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
