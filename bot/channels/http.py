"""Small HTTP helpers shared by the channel endpoints."""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import jsonschema
from aiohttp import web
from botbuilder.schema import Activity
from jsonschema import Draft202012Validator
from msrest.exceptions import DeserializationError

from bot.errors import BadRequest, Unauthorized
from shop.store import jsondoc

# Direct Line and the Bot Connector refuse bodies above this size (413), as Azure's do.
MAX_BODY_BYTES = 256 * 1024


async def read_json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """Reads a JSON object body: 413 when too large, 400 (`parse_json`) when malformed or
    not an object."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=request.content_length)
    raw = await request.read()  # aiohttp enforces client_max_size on chunked bodies too
    if not raw.strip():
        if allow_empty:
            return {}
        raise BadRequest("the request body must be a JSON object")
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def parse_json(raw: bytes) -> Any:
    """A request body's JSON value; 400 with a sentence when it is not JSON, or when it is
    JSON the store could not keep as it came (every body may end up stored, in a
    conversation's log or its state)."""
    try:
        body = json.loads(raw, parse_constant=_not_a_json_number)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("the request body is not valid JSON") from None
    except (ValueError, RecursionError):
        # Valid JSON the parser will not hold: an integer of thousands of digits
        # (Python's int-to-string limit), or nesting deeper than its recursion limit.
        raise BadRequest("the request body holds a number or a nesting too large to read") from None
    # Valid JSON that the store's writer refuses would otherwise be accepted and then fail
    # where it is stored (a 500, or a turn that crashes after the client got its 2xx).
    refused = jsondoc.refusal(body)
    if refused is not None:
        raise BadRequest(f"the request body cannot be kept: {refused}")
    return body


def _not_a_json_number(constant: str) -> Any:
    # Python's parser reads NaN and Infinity, which are not JSON; the store would write null.
    raise BadRequest(f"the request body is not valid JSON: {constant} is not a JSON number")


def bearer_credential(request: web.Request) -> str:
    """The credential of an `Authorization: Bearer ...` header; 401 when absent or malformed."""
    header = request.headers.get("Authorization", "")
    if not header.isascii():
        # Bytes that are not UTF-8 reach us as surrogates, which no token holds (and which
        # cannot be encoded again to check one).
        raise Unauthorized("the Authorization header must be plain ASCII: 'Bearer ' and a token")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("an Authorization: Bearer header is required")
    return credential.strip()


def is_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def loopback_url(request: web.Request) -> str:
    """This server's own address as reachable from this machine (the bot's serviceUrl)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        return f"{request.scheme}://{request.host}"
    host, port = sockname[0], sockname[1]
    address = ipaddress.ip_address(host)
    if address.is_unspecified or address.is_loopback:
        host = "127.0.0.1" if address.version == 4 else "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# (HTTP method, path, name of the handler method): a channel's routes, declared once.
RouteSpecs = tuple[tuple[str, str, str], ...]


def bound_routes(handler: object, specs: RouteSpecs) -> list[web.RouteDef]:
    """The routes served by `handler`'s methods."""
    return [web.route(method, path, getattr(handler, name)) for method, path, name in specs]


def deferred_routes(key: web.AppKey[Any], specs: RouteSpecs) -> list[web.RouteDef]:
    """The routes served by the methods of `app[key]`, an object the app builds at
    start-up (in its cleanup context, once the stores are open), when the routes must
    already be registered."""

    def handler(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            method: Callable[[web.Request], Awaitable[web.StreamResponse]] = getattr(request.app[key], name)
            return await method(request)

        return handle

    return [web.route(method, path, handler(name)) for method, path, name in specs]


@functools.cache
def _activity_schema() -> Draft202012Validator:
    # The JSON Schema of what the app reads from an activity, shipped with the package.
    text = resources.files("bot.channels").joinpath("schemas/activity.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def parse_activity(body: dict[str, Any]) -> Activity:
    """A Bot Framework activity from its JSON: checked against the activity's JSON Schema
    (`schemas/activity.schema.json`: the fields the bot reads, their types and lengths),
    then deserialised; 400 with the first problem, its field named, otherwise."""
    problem = jsonschema.exceptions.best_match(_activity_schema().iter_errors(body))
    if problem is not None:
        where = "/".join(str(part) for part in problem.absolute_path) or "the activity"
        raise BadRequest(f"the activity is not well formed: {where}: {problem.message[:200]}")
    try:
        activity = Activity().deserialize(body)
    except (DeserializationError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(f"the activity is not well formed: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(activity, Activity):
        raise BadRequest("the activity is not well formed")
    return activity
