"""The Bot Framework adapter: authentication wiring and the one place turn errors are handled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, ResourceResponse
from botframework.connector.auth import AuthenticationConstants, BotFrameworkAuthentication

from bot.activity_json import activity_json
from bot.settings import Settings
from shop import telemetry
from shop.errors import StoreUnavailable

log = logging.getLogger(__name__)

# Takes one outgoing activity (as its JSON dict) into a channel this app serves itself,
# and answers the id the channel gave it.
ChannelDelivery = Callable[[dict[str, Any]], Awaitable[str]]
Turn = Callable[[TurnContext], Awaitable[None]]
_LOCAL_DELIVERY_KEY = "aftercare.local_channel_delivery"

# What a customer sees when a turn fails on our side. It never carries internals.
TURN_ERROR_REPLY = (
    "Sorry, something went wrong on our side and I couldn't finish that. "
    "Please send your message again in a moment."
)
STORE_UNAVAILABLE_REPLY = (
    "Our order system is temporarily unavailable, so I can't look that up right now. "
    "Please try again in a minute; nothing you sent has been lost."
)


def bot_framework_authentication(settings: Settings) -> BotFrameworkAuthentication:
    """Builds the authentication that validates /api/messages requests from Azure Bot Service.

    With no `MicrosoftAppId` it accepts anonymous requests (local use only).
    """
    config = SimpleNamespace(
        APP_ID=settings.app_id or None,
        APP_PASSWORD=settings.app_password or None,
        APP_TYPE=settings.app_type.value,
        APP_TENANTID=settings.app_tenant_id or None,
    )
    if settings.openid_metadata_url:
        # Every parameterised value must then be given; they are the public cloud's own,
        # with only the signing-key metadata moved.
        config.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = settings.openid_metadata_url
        config.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
        config.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        config.TO_CHANNEL_FROM_BOT_LOGIN_URL = AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL
        config.OAUTH_URL = AuthenticationConstants.OAUTH_URL
        config.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = (
            AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL
        )
    return ConfigurationBotFrameworkAuthentication(config)


class AftercareAdapter(CloudAdapter):
    """CloudAdapter with Aftercare's turn-error policy.

    A failed turn is logged with its traceback for the operators, and the customer gets
    a short apology: no exception text, no stack trace, no internal names.
    """

    def __init__(self, authentication: BotFrameworkAuthentication) -> None:
        super().__init__(authentication)
        self.on_turn_error = self._apologise_for_turn_error

    async def process_local_activity(self, activity: Activity, logic: Turn, deliver: ChannelDelivery) -> None:
        """Runs a turn for a channel this app serves itself (the local Direct Line).

        Such a channel needs neither a JWT hop in nor a Bot Connector hop out: the
        activity is already in this process, and the replies are handed to `deliver`,
        which stores them in the channel's log as the Bot Connector endpoint would.
        The HTTP hop it saves is a ConnectorClient (and a token client) built per
        turn, msrest serialising every reply, a blocking `requests` call on a thread,
        and the endpoint parsing it again: most of a stock bot's CPU per turn. It is
        the shape of Direct Line App Service Extension, where bot and channel share
        one connection instead of an HTTP request per reply. Turns from Azure's
        channels (`process_activity`) still reply over HTTP.
        """
        context = TurnContext(self, activity)
        context.turn_state[self.BOT_IDENTITY_KEY] = self.create_claims_identity()
        context.turn_state[self.BOT_OAUTH_SCOPE_KEY] = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        context.turn_state[self.BOT_CALLBACK_HANDLER_KEY] = logic
        context.turn_state[_LOCAL_DELIVERY_KEY] = deliver
        await self.run_pipeline(context, logic)

    async def send_activities(
        self, context: TurnContext, activities: list[Activity]
    ) -> list[ResourceResponse]:
        deliver: ChannelDelivery | None = context.turn_state.get(_LOCAL_DELIVERY_KEY)
        if deliver is None:
            return await super().send_activities(context, activities)
        responses = []
        for activity in activities:
            activity.id = None
            if activity.type == "delay":
                await asyncio.sleep(int(activity.value or 1000) / 1000)
                responses.append(ResourceResponse(id=""))
            elif activity.type == ActivityTypes.invoke_response:
                context.turn_state[self._INVOKE_RESPONSE_KEY] = activity
                responses.append(ResourceResponse(id=""))
            elif activity.type == ActivityTypes.trace:
                # Traces are for the Emulator; CloudAdapterBase drops them for every other channel.
                responses.append(ResourceResponse(id=""))
            else:
                responses.append(ResourceResponse(id=await deliver(activity_json(activity))))
        return responses

    async def _apologise_for_turn_error(self, context: TurnContext, error: Exception) -> None:
        activity = context.activity
        log.error(
            "turn failed (channel=%s conversation=%s activity=%s)",
            activity.channel_id,
            activity.conversation.id if activity.conversation else "?",
            activity.id,
            exc_info=error,
        )
        if activity.type != ActivityTypes.message:
            return
        telemetry.TURN_ERRORS.labels(str(activity.channel_id or "unknown")).inc()
        reply = STORE_UNAVAILABLE_REPLY if _caused_by(error, StoreUnavailable) else TURN_ERROR_REPLY
        try:
            await context.send_activity(reply)
        except Exception:
            # The channel itself may be what failed; the operator log above has the cause.
            log.exception("could not deliver the turn-error apology")


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
