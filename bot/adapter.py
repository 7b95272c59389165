"""The Bot Framework adapter: authentication wiring and the one place turn errors are handled."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import ActivityTypes
from botframework.connector.auth import AuthenticationConstants, BotFrameworkAuthentication

from bot.errors import StoreUnavailable
from bot.settings import Settings

log = logging.getLogger(__name__)

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
