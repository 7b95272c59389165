"""Verifying the customer: by the email on their account, or by full name and zip code.

Verification can happen in any message (a customer often opens with their email), and
whatever task was waiting for it carries on afterwards. After repeated failures the
engine stops asking and offers a person; the tools themselves refuse after a few more,
so guessing cannot be used to probe for accounts.
"""

from __future__ import annotations

import re
from typing import Literal

from dialogs.entities import emails, person_name, zip_codes
from dialogs.flows.base import FlowSpec, OfflineTurn

# Failed attempts after which the engine offers a person instead of asking again.
HANDOFF_AFTER_FAILURES = 3

Verification = Literal["verified", "failed", "asked", "nothing"]

# Words that make a message a question or a request, not a name ("why do you need that").
_NOT_A_NAME = re.compile(
    r"\?|\b(why|what|how|need|want|don'?t|do|can|cannot|can't|order|cancel|return|help|know|not|no|"
    r"email|address|phone)\b",
    re.IGNORECASE,
)


async def verify_from_message(turn: OfflineTurn, *, names_allowed: bool = True) -> Verification:
    """Tries to verify the customer from this message; says what happened.

    An email is taken anywhere. A name and zip code are taken together anywhere, and
    one at a time when the last question asked for them; `names_allowed=False` (the
    message reads as a request, "track my shipment") stops a lone name being guessed.
    """
    awaiting = turn.state.flow is not None and turn.state.flow.awaiting == "identity"
    found_emails = emails(turn.text)
    if found_emails:
        result = await turn.tool("find_user_id_by_email", email=found_emails[0])
        return _outcome(turn, result.ok, "that email address")
    zips = zip_codes(turn.text)
    if not awaiting:
        name = person_name(turn.text) if zips else None
        if not (zips and name):
            return "nothing"
        if turn.state.flow is None:
            turn.start_flow("verify_identity")
    slots = turn.slots
    looks_like_name = names_allowed and not _NOT_A_NAME.search(turn.text)
    name = person_name(turn.text) if zips or looks_like_name else None
    if zips:
        slots["zip"] = zips[0]
    if name:
        slots["first_name"], slots["last_name"] = name.first, name.last
    if not (zips or name):
        return "nothing"
    if "first_name" not in slots:
        turn.ask("identity", "Thanks. And your first and last name, as on your account?")
        return "asked"
    if "zip" not in slots:
        turn.ask("identity", f"Thanks, {slots['first_name']}. And the zip code of your address?")
        return "asked"
    result = await turn.tool(
        "find_user_id_by_name_zip",
        first_name=slots["first_name"],
        last_name=slots["last_name"],
        zip=slots["zip"],
    )
    for key in ("first_name", "last_name", "zip"):
        slots.pop(key, None)
    return _outcome(turn, result.ok, "that name and zip code")


def _outcome(turn: OfflineTurn, ok: bool, what: str) -> Verification:
    if ok:
        if turn.state.flow is not None and turn.state.flow.awaiting == "identity":
            turn.state.flow.awaiting = None
        name = turn.state.customer_first_name
        turn.say(f"Thanks{', ' + name if name else ''}, you're verified.")
        return "verified"
    failures = turn.state.verification_failures
    if failures >= HANDOFF_AFTER_FAILURES:
        turn.request_handoff(
            "I'm sorry, I still can't find your account, so I can't look at orders here. "
            "I'm passing you to a person who can help you further.",
            "customer could not be verified",
        )
        return "failed"
    if turn.state.flow is None:
        turn.start_flow("verify_identity")
    if turn.channel.is_voice:
        turn.ask(
            "identity",
            f"I couldn't find an account with {what}. Could you say your full name and zip code "
            "again? You can also type the zip code on your keypad.",
        )
    else:
        turn.ask(
            "identity",
            f"I couldn't find an account with {what}. Could you check it, or try your email address "
            "(or full name and zip code) instead?",
        )
    return "failed"


async def run_verify(turn: OfflineTurn) -> None:
    if turn.state.verified_user_id:
        turn.end_flow()
        turn.say("You're already verified. What can I help you with?")
        return
    if turn.channel.is_voice:
        turn.ask("identity", "Sure. Please tell me your full name and zip code.")
        return
    turn.ask(
        "identity",
        "Sure. What's the email address on your account? (Or tell me your full name and zip code.)",
    )


async def fill_nothing(turn: OfflineTurn) -> bool:
    return False


VERIFY = FlowSpec("verify_identity", run_verify, fill_nothing)
