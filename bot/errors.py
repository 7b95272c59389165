"""The channel protocols' refusals: errors that carry an HTTP status and a code.

They extend the app's one hierarchy (`shop.errors.AftercareError`); `bot.http_errors`
maps them, and the domain's errors, to responses in one place.
"""

from __future__ import annotations

from shop.errors import AftercareError


class ChannelError(AftercareError):
    """A channel-protocol request was refused. Carries the HTTP status and a code."""

    status = 400
    code = "BadArgument"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class BadRequest(ChannelError):
    status = 400
    code = "BadArgument"


class Unauthorized(ChannelError):
    status = 401
    code = "Unauthorized"


class Forbidden(ChannelError):
    status = 403
    code = "Forbidden"


class TokenExpired(Forbidden):
    code = "TokenExpired"


class NotFound(ChannelError):
    status = 404
    code = "NotFound"
