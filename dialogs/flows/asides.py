"""Asides: something else said in the middle of a task, answered without losing the task.

A customer changing their address may ask whether return shipping is free, whether the
backpack comes in green, say thanks, or check the bot is still there. None of that
answers the question the task asked, and none of it is a misunderstanding either: the
aside is answered and the task carries on where it was ("Back to your address change:
what's the new address?"). Only a real non-answer counts towards offering a person.

`courtesy` splits a leading "thanks," or "hi," off a message; `small_talk` tells
thanks, hellos and chit-chat apart; `is_question` says whether a message asks
something (a question the policies answer well is an aside even when it mentions the
task's own subject: "does the new address count for future orders?").
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Literal

from dialogs.flows.base import Flow, OfflineTurn
from dialogs.flows.chat import answer_policy
from dialogs.flows.lookups import names_a_product, run_product_info
from dialogs.intents import LOW_CONFIDENCE, IntentGuess
from dialogs.turn import FlowState

# "thanks", "hi?" (are you there), "ok" (read it), "it fits perfectly", and chit-chat
# ("are you a bot?").
SmallTalk = Literal["thanks", "greeting", "ack", "praise", "chat"]
Aside = Literal["thanks", "greeting", "ack", "praise", "chat", "policy_question", "product_info"]
# A question the policies answer at least this well is an aside (the knowledge base
# quotes from 0.35; mid-task a slot answer must not read as a policy question).
POLICY_ASIDE = 0.5
# Chit-chat is short; a long message classified as a greeting is something else.
_SMALL_TALK_WORDS = 8

# What each task is called when the bot comes back to it.
TASK_NAMES = MappingProxyType(
    {
        "verify_identity": "confirming who you are",
        "order_status": "checking your order",
        "list_orders": "your orders",
        "track_shipment": "tracking your order",
        "cancel_order": "your cancellation",
        "change_address": "your address change",
        "change_payment": "your payment change",
        "modify_items": "changing your order's items",
        "exchange_items": "your exchange",
        "return_items": "your return",
        "refund_status": "your refund",
        "not_received": "your missing parcel",
        "late_delivery": "your late delivery",
        "damaged_item": "the damaged item",
        "wrong_item": "the wrong item",
        "charged_twice": "the double charge",
    }
)

_THANKS = (
    r"(?:thanks|thank you|thank u|thx|ty|cheers|much appreciated|appreciate it|ta)"
    r"(?: (?:so|very) much| a lot| a bunch| again| for that| for the help| for your help| mate)?"
)
_ACKNOWLEDGE = r"(?:ok(?:ay)?|great|cool|perfect|awesome|lovely|nice|brilliant|good|right|got it|i see|ah|oh)"
_HELLO = r"(?:(?:hi|hello|hey|hiya)(?: there)?|are you (?:still )?there|you there|anyone there|still there)"
_COURTESY = re.compile(
    rf"^\W*(?:(?P<thanks>(?:{_ACKNOWLEDGE}[\s,!.]*)?{_THANKS})|(?P<hello>{_HELLO})|(?P<ack>{_ACKNOWLEDGE}))"
    r"(?:[\s,!.?]+|$)",
    re.I,
)
_QUESTION = re.compile(
    r"\?\s*$|^\W*(?:what|how|when|where|why|which|who|is|are|do|does|did|can|could|will|would|should|may|"
    r"have|has|any)\b",
    re.I,
)


def courtesy(text: str) -> tuple[SmallTalk | None, str]:
    """(the courtesy a message opens with, the rest): ("thanks", "do you sell tents?")
    for "thanks, do you sell tents?"; (None, text) when it opens with none. Several in a
    row count as one ("hello? are you still there?")."""
    kinds: list[SmallTalk] = []
    rest = text
    while (match := _COURTESY.match(rest)) is not None and match.end() > 0:
        rest = rest[match.end() :].strip()
        kinds.append("thanks" if match.group("thanks") else "greeting" if match.group("hello") else "ack")
    said = [kind for kind in kinds if kind != "ack"]
    if said:
        return said[0], rest
    return (None, rest) if rest else ("ack" if kinds else None, rest)  # "ok, and ..." goes on


def is_question(text: str) -> bool:
    return _QUESTION.search(text) is not None


async def find_aside(
    turn: OfflineTurn, guess: IntentGuess, text: str, *, sure: float, new_task: bool
) -> Aside | None:
    """What kind of aside `text` (the message after any courtesy) is, or None when it is
    none: `guess` is its intent, `sure` the score that makes a guess certain, and
    `new_task` says it reads as a clear request for another task (which no aside is)."""
    confident = guess.score >= sure
    if confident and guess.intent in ("policy_question", "product_info"):
        return "policy_question" if guess.intent == "policy_question" else "product_info"
    # Small talk is told by its intent even when the classifier is only fairly sure (a
    # kind word rarely reads like the examples), and an off-topic question by being one.
    fairly_sure = guess.score >= LOW_CONFIDENCE
    if guess.intent == "praise" and fairly_sure:
        return "praise"
    short = len(text.split()) <= _SMALL_TALK_WORDS
    if guess.intent == "greeting" and fairly_sure and short:
        return "greeting"
    if guess.intent == "out_of_scope" and ((confident and short) or is_question(text)):
        return "chat"
    if new_task or not is_question(text):
        return None
    if await names_a_product(turn, text):
        return "product_info"
    answer = await turn.knowledge.answer(text)
    return "policy_question" if answer is not None and answer.score >= POLICY_ASIDE else None


async def answer_aside(turn: OfflineTurn, kind: Aside, text: str) -> None:
    """Answers the aside; the task in progress is left as it was (see `resume`)."""
    saved = turn.state.flow
    turn.in_aside = True
    if kind == "policy_question":
        await answer_policy(turn, text)
    elif kind == "product_info":
        await run_product_info(turn)
    else:
        answer_small_talk(turn, kind)
    turn.in_aside = False
    turn.state.flow = saved


def answer_small_talk(turn: OfflineTurn, kind: SmallTalk) -> None:
    if kind == "thanks":
        turn.say("You're welcome!")
    elif kind == "greeting":
        turn.say("Yes, I'm here.")
    elif kind == "praise":
        turn.say("That's great to hear!")
    elif kind == "chat":
        turn.say("That's not something I can help with here, I'm afraid.")
    # "ok": nothing to answer; the task's question comes again.


async def resume(turn: OfflineTurn, saved: FlowState, run: Flow) -> None:
    """Puts the task back and asks its question again, opening with "Back to ...:"."""
    turn.state.flow = saved
    # Asked again, not answered wrongly: "I couldn't read that as an address" would be untrue.
    saved.awaiting = None
    first = len(turn.replies)
    await run(turn)
    if len(turn.replies) > first:
        reply = turn.replies[first]
        name = TASK_NAMES.get(saved.name, "where we were")
        turn.replies[first] = reply.model_copy(update={"text": f"Back to {name}: {reply.text}"})
