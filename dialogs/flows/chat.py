"""The conversational intents that need no order: greeting, thanks and goodbye,
complaints, asking for a person, policy questions, and what the bot cannot do."""

from __future__ import annotations

import re

from dialogs.flows.base import FlowSpec, OfflineTurn
from dialogs.flows.identity import fill_nothing

_WHAT_I_DO = (
    "I can check orders and deliveries, cancel or change pending orders, update addresses and payment "
    "methods, start returns and exchanges, check refunds, and answer questions about our policies."
)
_START_SUGGESTIONS = ("Where is my order?", "Return an item", "Cancel an order", "Return policy")


def _name(turn: OfflineTurn) -> str:
    return f", {turn.state.customer_first_name}" if turn.state.customer_first_name else ""


async def run_greeting(turn: OfflineTurn) -> None:
    turn.end_flow()
    if turn.channel.is_voice:
        turn.say(f"Hi{_name(turn)}! I'm the shop's support assistant. How can I help you today?")
        return
    turn.say(
        f"Hi{_name(turn)}! I'm the shop's support assistant. {_WHAT_I_DO} How can I help?",
        suggestions=_START_SUGGESTIONS,
    )


async def run_goodbye(turn: OfflineTurn) -> None:
    turn.end_flow()
    turn.state.queued = []  # the customer is leaving: nothing more waits
    turn.say(f"You're welcome{_name(turn)}! Have a great day.")


# Complaints no tool of the bot can settle: a parcel that never came, a double charge, a
# courier's conduct. They go to a person with the case written up.
_NEEDS_A_PERSON = (
    (
        re.compile(
            r"never (arrived|came|got here|received)|not (arrived|received)|didn'?t (arrive|receive|get)|"
            r"(lost|stolen|missing) (parcel|package|order|delivery)|(parcel|package|order) (was |is )?"
            r"(lost|stolen|missing)|marked (as )?delivered",
            re.I,
        ),
        "a parcel that never arrived",
        "complaint: parcel not received",
    ),
    (
        re.compile(r"charged (me )?twice|double[- ]charged|charged (me )?two times|duplicate charge", re.I),
        "a double charge",
        "complaint: charged twice",
    ),
    (
        re.compile(
            r"(driver|courier|delivery (guy|person|man|woman)).{0,30}(rude|aggressive|threaten)", re.I
        ),
        "how the delivery was handled",
        "complaint: courier conduct",
    ),
)


def complaint_for_a_person(text: str) -> tuple[str, str] | None:
    """(what it is about, the reason for the agent) when no tool can settle the complaint."""
    for pattern, what, reason in _NEEDS_A_PERSON:
        if pattern.search(text):
            return what, reason
    return None


async def run_complaint(turn: OfflineTurn) -> None:
    turn.end_flow()
    turn.state.open_complaint = True
    needs_a_person = complaint_for_a_person(turn.text)
    if needs_a_person is not None:
        what, reason = needs_a_person
        turn.request_handoff(
            f"I'm sorry about {what}; that needs a person from our support team to look into, "
            "so I'm passing your case to them with our conversation so far.",
            reason,
        )
        return
    turn.say(
        "I'm sorry about that; it's not the experience we want you to have. I can help put it right with a "
        "return, an exchange or a refund, or I can connect you with a person. What would you prefer?",
        suggestions=["Return an item", "Exchange an item", "Talk to a person"],
    )


async def run_human(turn: OfflineTurn) -> None:
    turn.request_handoff(
        "Of course. I'm passing you to a person from our support team; they'll see our "
        "conversation so far, so you won't need to repeat yourself.",
        "customer asked for a person",
    )


async def run_out_of_scope(turn: OfflineTurn) -> None:
    turn.end_flow()
    turn.state.out_of_scope_count += 1
    if turn.state.out_of_scope_count >= 2:
        # Twice in a row something the assistant cannot do: a person may well be able to.
        turn.state.out_of_scope_count = 0
        turn.request_handoff(
            "That's outside what I can do here too, so I'm passing you to a person from our "
            "support team; they'll see our conversation so far.",
            "requests outside what the assistant can do",
        )
        return
    turn.say(f"Sorry, that's not something I can help with. {_WHAT_I_DO}", suggestions=_START_SUGGESTIONS)


async def run_policy(turn: OfflineTurn) -> None:
    turn.end_flow()
    await answer_policy(turn)


async def answer_policy(turn: OfflineTurn, question: str = "") -> bool:
    """Answers from the policy documents, quoting the best passage; False when none fits."""
    answer = await turn.knowledge.answer(question or turn.text)
    turn.state.record_tool("search_policies", answer is not None)
    if answer is None:
        turn.say(
            "I couldn't find that in our policies. Would you like me to connect you with a person?",
            suggestions=["Talk to a person"],
        )
        return False
    turn.say(f"{answer.text}\n\n_Source: {answer.passage.citation}_")
    return True


GREETING = FlowSpec("greeting", run_greeting, fill_nothing)
GOODBYE = FlowSpec("goodbye", run_goodbye, fill_nothing)
COMPLAINT = FlowSpec("complaint", run_complaint, fill_nothing)
HUMAN = FlowSpec("human_agent", run_human, fill_nothing)
OUT_OF_SCOPE = FlowSpec("out_of_scope", run_out_of_scope, fill_nothing)
POLICY = FlowSpec("policy_question", run_policy, fill_nothing)
