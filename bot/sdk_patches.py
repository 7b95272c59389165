"""Minimal, documented fixes to third-party SDK hot spots on the turn path.

Each patch keeps the SDK's behaviour exactly and only removes a cost; tests in
tests/test_sdk_patches.py check that the results are unchanged.

msrest `ClientRetryPolicy`
    Every BotBuilder turn builds two msrest clients (the ConnectorClient for replies and
    the token API client), and each builds a `ClientRetryPolicy`, whose constructor
    computes its retry status list as `[i for i in range(999) if i not in safe_codes]`
    with `safe_codes` a 500-element *list*: about half a million comparisons, roughly
    8 ms of CPU per client on this machine, most of a stock bot's CPU per turn.
    Making `safe_codes` a frozenset turns the scan into hash look-ups; the list it
    produces is identical. (msrest is in maintenance; fixing it upstream is not an option.)

msrest's async `requests` sender: its own threads, not the event loop's default executor
    The ConnectorClient sends every reply (and every typing indicator) with blocking
    `requests` in `loop.run_in_executor(None, ...)`: a thread of the loop's default
    executor held for the whole HTTP round trip. That executor has min(32, cores + 4)
    threads, six on two cores, and the app needs it too: aiohttp hands every request of
    a `trust_env` session (azure-core's, so every Cosmos DB operation) to it for the
    netrc and proxy look-ups, and the embedding model encodes there. For the local
    Direct Line the reply goes to this same app, whose Bot Connector endpoint must write
    it to the store before answering. With six replies in flight the six threads wait
    for handlers that wait for a thread: the app deadlocked until requests' 100 s read
    timeout (8 concurrent conversations on STORE=cosmos were enough). The patched
    `send` is msrest's own, line for line, but runs `requests` on a pool the app owns
    (started and shut down in its lifecycle), so
    replies waiting on the app can no longer starve the work that answers them. (The
    app's own Direct Line turns now reply in-process; the patch still covers proactive
    messages and every reply to Azure's channels.)

BotBuilder `CachedBotState.compute_hash`: JSON, with jsonpickle only for what JSON cannot hold
    `BotState` tells whether a turn changed the state by comparing a "hash" taken when the
    state is loaded with one taken at `save_changes`; it is `str(jsonpickle.Pickler().flatten(state))`,
    which walks every value in Python with several type checks each: three times a turn,
    about 2 ms of CPU per turn for a conversation's state. Aftercare's state is plain JSON
    (the storage refuses anything else), so JSON text of the same dict (orjson, C) is an
    equally exact change test at a fraction of the cost. State holding values JSON cannot write (objects
    kept by other BotBuilder components) still gets the jsonpickle form, so nothing compares
    differently from before except that the hash string itself is shorter.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from typing import Any

import requests
from botbuilder.core.bot_state import CachedBotState
from msrest.exceptions import ClientRequestError, raise_with_traceback
from msrest.universal_http import ClientRequest
from msrest.universal_http.async_requests import AsyncBasicRequestsHTTPSender, AsyncRequestsClientResponse
from msrest.universal_http.requests import ClientRetryPolicy

from shop.store import jsondoc

log = logging.getLogger(__name__)

# Replies, typing indicators and token calls in flight at once; each waits on I/O.
CONNECTOR_THREADS = 64
# The releases each patch was written against and checked with: another release may have
# changed the code a patch replaces, so it is then left unpatched (with a warning).
PATCHED_RELEASES = {"msrest": "0.7.1", "botbuilder-core": "4.17.1"}

# The app's connector threads, by event loop (an app registers its pool in its lifecycle).
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


def use_connector_threads(loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor) -> None:
    """msrest's blocking sends made on `loop` run on `executor` (the app owns and closes it)."""
    _pools[loop] = executor


def release_connector_threads(loop: asyncio.AbstractEventLoop) -> None:
    _pools.pop(loop, None)


async def _send_on_connector_pool(
    self: AsyncBasicRequestsHTTPSender, request: ClientRequest, **kwargs: Any
) -> AsyncRequestsClientResponse:
    """`AsyncBasicRequestsHTTPSender.send` of msrest 0.7.1, on the app's connector threads
    (the loop's default executor, as before, where no app registered any)."""
    session = kwargs.pop("session", self.session)
    loop = kwargs.get("loop", asyncio.get_event_loop())
    future = loop.run_in_executor(
        _pools.get(loop), functools.partial(session.request, request.method, request.url, **kwargs)
    )
    try:
        return AsyncRequestsClientResponse(request, await future)
    except requests.RequestException as err:
        msg = "Error occurred in request."
        raise_with_traceback(ClientRequestError, msg, err)
        raise  # unreachable: raise_with_traceback always raises


_jsonpickle_state_hash = CachedBotState.compute_hash


def _json_state_hash(self: CachedBotState, obj: object) -> str:
    """`CachedBotState.compute_hash` as JSON text where the state is plain JSON."""
    try:
        return "json:" + jsondoc.dumps(obj)
    except TypeError:  # not plain JSON (an object, a non-string key, a cycle): as before
        return "jsonpickle:" + _jsonpickle_state_hash(self, obj)


def apply_sdk_patches() -> list[str]:
    """Applies every patch written for the installed release; calling it again changes
    nothing. Returns the patches applied."""
    applied = []
    if _is_patched_release("msrest"):
        if not isinstance(ClientRetryPolicy.safe_codes, frozenset):
            ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)  # type: ignore[assignment]
        AsyncBasicRequestsHTTPSender.send = _send_on_connector_pool  # type: ignore[method-assign]
        applied += ["msrest retry policy", "msrest sender threads"]
    if _is_patched_release("botbuilder-core"):
        CachedBotState.compute_hash = _json_state_hash
        applied.append("botbuilder state hash")
    return applied


def _is_patched_release(distribution: str) -> bool:
    installed = version(distribution)
    if installed == PATCHED_RELEASES[distribution]:
        return True
    log.warning(
        "%s %s is installed, but its patch was written for %s: left unpatched (slower, not wrong)",
        distribution,
        installed,
        PATCHED_RELEASES[distribution],
    )
    return False
