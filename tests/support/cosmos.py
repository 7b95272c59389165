"""Runs the local Cosmos DB protocol server (tests/support/cosmos_server.js) for tests
and the store benchmark: HTTPS on a free loopback port, stopped on exit."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import selectors
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

SCRIPT = Path(__file__).with_name("cosmos_server.js")
# The server accepts any well-formed key; this one is obviously not a secret.
TEST_KEY = base64.b64encode(b"aftercare-local-test-key").decode()
_START_TIMEOUT_S = 20


@contextlib.contextmanager
def cosmos_server(*, advertised_port: int | None = None) -> Iterator[str]:
    """Starts the server and yields its endpoint URL (self-signed TLS).

    `advertised_port`: the port the account names as its regional endpoint, where the
    SDK sends every request after the first. Give a proxy's port to route the whole
    client path through that proxy (see tests/reliability/tcp_proxy.py).
    """
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("the Cosmos DB test server needs Node.js (node) on PATH")
    if not (SCRIPT.parents[2] / "node_modules" / "@vercel" / "cosmosdb-server").is_dir():
        raise RuntimeError("@vercel/cosmosdb-server is missing: run `npm ci` (or `make install`)")
    env = {**os.environ, "COSMOS_ADVERTISED_PORT": str(advertised_port or "")}
    process = subprocess.Popen(  # closing stdin stops it (see the script)
        [node, str(SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(_START_TIMEOUT_S):
                raise RuntimeError(f"the Cosmos DB test server did not start within {_START_TIMEOUT_S} s")
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the Cosmos DB test server exited with code {process.wait()}")
        yield f"https://127.0.0.1:{json.loads(line)['port']}"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
