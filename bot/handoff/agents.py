"""Support agents: local accounts with argon2-hashed passwords, signed-in sessions, and
who is online.

Accounts, sessions and presence are documents in the state store, so every app instance
accepts the same sign-in. A session id travels only in an `HttpOnly`, `SameSite=Strict`
cookie; each session carries its own CSRF token, which the console sends back in a header
on every state-changing request. In production, sign-in through Entra ID (App Service
Authentication in front of `/agent`) replaces the local accounts; see the README.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel

from shop.errors import AftercareError, ConcurrencyConflict
from shop.store.base import StateStore

SESSION_TTL_S = 12 * 3600
ONLINE_WITHIN_S = 90
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
_PRESENCE_KEY = "agent/presence"


class AgentError(AftercareError):
    """An agent account could not be created (bad name, weak password, taken)."""


class Account(BaseModel):
    name: str
    display_name: str
    password_hash: str


class Session(BaseModel):
    id: str
    agent: str
    display_name: str
    csrf: str
    expires_at: float


def _account_key(name: str) -> str:
    return f"agent/account/{name}"


def _session_key(session_id: str) -> str:
    return f"agent/session/{session_id}"


class Agents:
    def __init__(self, store: StateStore) -> None:
        self._store = store
        # Defaults of argon2-cffi (argon2id, RFC 9106 low-memory profile).
        self._hasher = PasswordHasher()
        # A hash to verify against for unknown names, so the answer takes as long.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    async def add(self, name: str, password: str, display_name: str = "") -> Account:
        name = name.strip().lower()
        if not _NAME.match(name):
            raise AgentError("an agent name is 2-40 characters: lowercase letters, digits, '.', '_' or '-'")
        if len(password) < 10:
            raise AgentError("the password must be at least 10 characters")
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        account = Account(name=name, display_name=display_name.strip() or name.title(), password_hash=hashed)
        try:
            await self._store.insert_state(_account_key(name), account.model_dump())
        except ConcurrencyConflict:
            raise AgentError(f"an agent named {name} already exists") from None
        return account

    async def sign_in(self, name: str, password: str) -> Session | None:
        found = await self._store.read_state(_account_key(name.strip().lower()))
        hashed = str(found.doc["password_hash"]) if found else self._dummy
        try:
            await asyncio.to_thread(self._hasher.verify, hashed, password)
        except (VerificationError, InvalidHashError):
            return None
        if found is None:
            return None
        account = Account.model_validate(found.doc)
        session = Session(
            id=secrets.token_urlsafe(32),
            agent=account.name,
            display_name=account.display_name,
            csrf=secrets.token_urlsafe(32),
            expires_at=time.time() + SESSION_TTL_S,
        )
        await self._store.write_state(_session_key(session.id), session.model_dump())
        return session

    async def session(self, session_id: str | None) -> Session | None:
        # Session ids are URL-safe ASCII; a cookie of other bytes (which arrive as surrogates
        # and could not be encoded to look it up) is simply no session.
        if not session_id or len(session_id) > 100 or not session_id.isascii():
            return None
        found = await self._store.read_state(_session_key(session_id))
        if found is None:
            return None
        session = Session.model_validate(found.doc)
        if session.expires_at < time.time():
            await self._store.delete_state(_session_key(session_id))
            return None
        return session

    async def sign_out(self, session_id: str) -> None:
        await self._store.delete_state(_session_key(session_id))

    async def seen(self, agent: str) -> None:
        """Marks `agent` as online now (their console is open)."""
        for _ in range(5):
            found = await self._store.read_state(_PRESENCE_KEY)
            seen = dict(found.doc) if found else {}
            seen[agent] = time.time()
            try:
                if found is None:
                    await self._store.insert_state(_PRESENCE_KEY, seen)
                else:
                    await self._store.write_state(_PRESENCE_KEY, seen, etag=found.etag)
                return
            except ConcurrencyConflict:
                continue

    async def online(self) -> list[str]:
        found = await self._store.read_state(_PRESENCE_KEY)
        now = time.time()
        return sorted(
            name for name, at in (found.doc if found else {}).items() if now - float(at) < ONLINE_WITHIN_S
        )
