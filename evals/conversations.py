"""Whole-conversation test cases in YAML, and a runner that plays them against any engine.

A file holds `conversations:`, a list of cases like

    - name: cancel the only pending order
      tags: [cancel]
      channel: webchat                      # optional, default webchat
      turns:
        - user: I want to cancel my order
          expect: {contains: [email]}
        - user: evelyn.ito2168@example.com
          expect: {contains: ["#W6207110"], regex: "why"}
        - user: I ordered it by mistake
          expect: {pending: true, contains: ["$536.67", "Visa ending 5896"]}
        - user: "yes"
          expect: {actions: [cancel_pending_order], contains: [cancelled]}
      store:                                # checked after the last turn
        orders: {"#W6207110": {status: cancelled, "payment_history.-1.transaction_type": refund}}
        unchanged: ["#W1234567"]            # orders or users that must not have changed

Quote a customer line that is a bare yes/no (YAML reads it as a boolean) or contains
" #" (YAML reads the rest as a comment): `user: "yes"`, `user: "cancel #W2611340"`.

Every check is about what the customer sees or what the shop's data becomes, never
about the engine's internals, so the same files judge the offline engine and the GPT
dialog alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dialogs.turn import Channel, DialogEngine, DialogState, Reply
from shop.store.base import OrderStore

# The suites the tests and `aftercare eval conversations` both run: one place for both.
SUITES_DIR = Path(__file__).resolve().parent / "suites"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TurnExpect(_Strict):
    contains: list[str] = Field(default_factory=list)  # case-insensitive substrings of the replies
    not_contains: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)  # case-insensitive searches in the replies
    tools: list[str] = Field(default_factory=list)  # tools called this turn (any outcome)
    not_tools: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)  # consequential actions that ran and succeeded
    no_actions: bool = False  # nothing consequential ran this turn
    pending: bool | None = None  # an action awaits confirmation after this turn
    handoff: bool | None = None
    verified: bool | str | None = None  # True/False, or the exact user id
    card: bool | None = None
    # Buttons the replies offer (suggested actions), each case-insensitively; `[]` checks
    # that none are offered (a channel that cannot show them).
    suggestions: list[str] | None = None
    store: StoreExpect | None = None

    @field_validator(
        "contains", "not_contains", "regex", "tools", "not_tools", "actions", "suggestions", mode="before"
    )
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class StoreExpect(_Strict):
    orders: dict[str, dict[str, Any]] = Field(default_factory=dict)  # order id -> {dotted path: value}
    users: dict[str, dict[str, Any]] = Field(default_factory=dict)
    unchanged: list[str] = Field(default_factory=list)  # order ids ('#W...') or user ids


class ConversationTurn(_Strict):
    user: str = ""
    value: dict[str, Any] | None = None
    expect: TurnExpect = Field(default_factory=TurnExpect)


class Conversation(_Strict):
    name: str
    tags: list[str] = Field(default_factory=list)
    channel: str = "webchat"
    turns: list[ConversationTurn]
    store: StoreExpect | None = None
    source: str = ""


class ConversationResult(BaseModel):
    name: str
    source: str
    passed: bool
    failures: list[str]
    turns: int
    seconds: float
    transcript: list[str]


def load_conversations(paths: Iterable[Path]) -> list[Conversation]:
    """Every case in the given YAML files (or folders of them), in file order."""
    cases: list[Conversation] = []
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            for index, raw in enumerate(data.get("conversations", []), start=1):
                try:
                    cases.append(Conversation.model_validate({**raw, "source": file.name}))
                except ValidationError as exc:
                    # YAML reads a bare no/yes as a boolean and cuts text at " #": quote those.
                    raise ValueError(
                        f"{file.name}, conversation {index} ({raw.get('name')!r}): {exc}"
                    ) from None
    names = [c.name for c in cases]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"conversation names must be unique; repeated: {sorted(duplicates)}")
    return cases


async def run_conversation(
    conversation: Conversation, engine: DialogEngine, store: OrderStore
) -> ConversationResult:
    """Plays the customer's turns in order and checks every expectation; a failing
    turn is reported and the conversation goes on, so one run shows every problem."""
    started = time.perf_counter()
    state = DialogState()
    channel = Channel(id=conversation.channel)
    failures: list[str] = []
    transcript: list[str] = []
    watched = _watched(conversation)
    before = {key: await _read(store, key) for key in watched}
    for number, turn in enumerate(conversation.turns, start=1):
        actions_before = len(state.actions)
        replies = await engine.respond(turn.user, turn.value, state, channel)
        transcript.append(f"user: {turn.user}")
        transcript.extend(f"bot[{r.engine}]: {r.text}" for r in replies)
        problems = _check_turn(turn.expect, replies, state, actions_before)
        if turn.expect.store is not None:
            problems += await _check_store(turn.expect.store, store, before)
        failures.extend(f"turn {number} ({turn.user!r}): {p}" for p in problems)
    if conversation.store is not None:
        failures.extend(f"after: {p}" for p in await _check_store(conversation.store, store, before))
    return ConversationResult(
        name=conversation.name,
        source=conversation.source,
        passed=not failures,
        failures=failures,
        turns=len(conversation.turns),
        seconds=time.perf_counter() - started,
        transcript=transcript,
    )


def _check_turn(
    expect: TurnExpect, replies: list[Reply], state: DialogState, actions_before: int
) -> list[str]:
    problems: list[str] = []
    said = "\n".join(r.text for r in replies)
    lower = said.lower()
    problems += [f"reply lacks {s!r}" for s in expect.contains if s.lower() not in lower]
    problems += [f"reply should not contain {s!r}" for s in expect.not_contains if s.lower() in lower]
    problems += [f"reply does not match /{p}/" for p in expect.regex if not re.search(p, said, re.I)]
    called = {call.tool for call in state.tools_this_turn()}
    problems += [f"tool {t} was not called" for t in expect.tools if t not in called]
    problems += [f"tool {t} should not have been called" for t in expect.not_tools if t in called]
    ran = [a for a in state.actions[actions_before:] if a.ok]
    problems += [f"action {a} did not run" for a in expect.actions if a not in {r.tool for r in ran}]
    if expect.no_actions and state.actions[actions_before:]:
        problems.append(f"no action should run, but {[a.tool for a in state.actions[actions_before:]]} did")
    if expect.pending is not None and (state.pending_action is not None) != expect.pending:
        problems.append(f"pending action expected {expect.pending}, got {state.pending_action is not None}")
    handoff = any(r.handoff_requested for r in replies)
    if expect.handoff is not None and handoff != expect.handoff:
        problems.append(f"handoff expected {expect.handoff}, got {handoff}")
    if isinstance(expect.verified, str) and state.verified_user_id != expect.verified:
        problems.append(f"verified user expected {expect.verified}, got {state.verified_user_id}")
    elif isinstance(expect.verified, bool) and bool(state.verified_user_id) != expect.verified:
        problems.append(f"verified expected {expect.verified}, got {state.verified_user_id}")
    has_card = any(r.card for r in replies)
    if expect.card is not None and has_card != expect.card:
        problems.append(f"card expected {expect.card}, got {has_card}")
    offered = [s.lower() for r in replies for s in r.suggested_actions]
    if expect.suggestions is not None:
        if not expect.suggestions and offered:
            problems.append(f"no buttons expected, got {offered}")
        missing = [s for s in expect.suggestions if s.lower() not in offered]
        problems += [f"no button {s!r} (got {offered})" for s in missing]
    if problems:
        problems.append(f"the bot said: {said!r}")
    return problems


def _watched(conversation: Conversation) -> list[str]:
    keys = list(conversation.store.unchanged) if conversation.store else []
    for turn in conversation.turns:
        if turn.expect.store is not None:
            keys += turn.expect.store.unchanged
    return list(dict.fromkeys(keys))


async def _read(store: OrderStore, key: str) -> dict[str, Any] | None:
    record = await (store.get_order(key) if key.startswith("#") else store.get_customer(key))
    return record.doc if record else None


async def _check_store(expect: StoreExpect, store: OrderStore, before: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for kind, wanted in (("order", expect.orders), ("user", expect.users)):
        for key, paths in wanted.items():
            doc = await _read(store, key)
            if doc is None:
                problems.append(f"{kind} {key} not found")
                continue
            for path, value in paths.items():
                actual = _at(doc, path)
                if not _same(actual, value):
                    problems.append(f"{kind} {key} {path}: expected {value!r}, got {actual!r}")
    for key in expect.unchanged:
        if await _read(store, key) != before.get(key):
            problems.append(f"{key} changed but should not have")
    return problems


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, list) and re.fullmatch(r"-?\d+", part):
            index = int(part)
            doc = doc[index] if -len(doc) <= index < len(doc) else None
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc


def _same(actual: Any, expected: Any) -> bool:
    if (
        isinstance(expected, float | int)
        and isinstance(actual, float | int)
        and not isinstance(expected, bool)
    ):
        return abs(float(actual) - float(expected)) < 0.005
    return bool(actual == expected)


TurnExpect.model_rebuild()
