"""The conversational intents that need no order: greeting, thanks and goodbye,
complaints, asking for a person, policy questions, and what the bot cannot do."""

from __future__ import annotations

import re
from types import MappingProxyType

from dialogs.flows.base import FlowSpec, OfflineTurn
from dialogs.flows.identity import fill_nothing

_WHAT_I_DO = (
    "I can check orders and deliveries, cancel or change pending orders, update addresses and payment "
    "methods, start returns and exchanges, check refunds, and answer questions about our policies."
)
_COURIER = r"(driver|courier|delivery (guy|person|man|woman)).{0,30}(rude|aggressive|threaten)"
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


# Complaints said in words that decide them, whatever else the sentence reads like ("my
# parcel never arrived" reads like tracking): the intent each one starts. A courier's
# conduct is for a person; the others have their own flows (`dialogs.flows.complaints`).
_COMPLAINTS = (
    (
        re.compile(
            r"never (arrived|came|got here|received)|not (arrived|received)|didn'?t (arrive|receive|get)|"
            r"(lost|stolen|missing) (parcel|package|order|delivery)|(parcel|package|order) (was |is )?"
            r"(lost|stolen|missing)|marked (as )?delivered",
            re.I,
        ),
        "not_received",
    ),
    (
        re.compile(
            r"charged (me )?twice|double[- ]charged?|charged (me )?two times|duplicate (charge|payment)|"
            r"billed (me )?twice|two charges",
            re.I,
        ),
        "charged_twice",
    ),
    (
        re.compile(
            r"(arrived|came|was|is|got here) (all )?(broken|damaged|smashed|cracked|faulty|defective)", re.I
        ),
        "damaged_item",
    ),
    (
        re.compile(r"\b(wrong (item|size|colou?r|product|model|variant)|not what i ordered)\b", re.I),
        "wrong_item",
    ),
    (re.compile(_COURIER, re.I), "complaint"),
)
# The complaint intents: a complaint's own flow, or (`complaint`) an apology and options.
COMPLAINT_INTENTS = frozenset(
    {"not_received", "late_delivery", "damaged_item", "wrong_item", "charged_twice", "complaint"}
)


# What a message must say for the classifier's guess of a complaint to stand: a happy
# "both arrived fine, the keyboard is excellent" reads like the damaged-item examples,
# "that's earlier than I expected" like a late delivery. Without its cue, the guess goes
# to the runner-up.
_CUES = MappingProxyType(
    {
        "not_received": re.compile(
            r"never|not|n't|missing|lost|stolen|vanish|disappear|nothing|nowhere|"
            r"no (box|parcel|package|sign)",
            re.I,
        ),
        "late_delivery": re.compile(
            r"late|delay|overdue|still|yet|long|ages|weeks|supposed|should have|should've|promised|"
            r"waiting|still wait|stuck|behind|n't|not here|not arrived|due|came and went|passed|frozen|"
            r"days since",
            re.I,
        ),
        "damaged_item": re.compile(
            r"broke|damag|crack|smash|dent|scratch|fault|defect|n't work|not working|won'?t|stopped|rip|torn|"
            r"leak|shatter|chip|bent|snap|dead|ruin|hole|pieces|crush|soak|wet|noise|rattl|loose|weird|"
            r"strange|odd",
            re.I,
        ),
        "wrong_item": re.compile(
            r"wrong|instead|different|not what|isn'?t what|someone else|somebody else|mix|not mine|"
            r"isn'?t mine|never ordered|match|not the|not my",
            re.I,
        ),
        "charged_twice": re.compile(
            r"twice|double|two|duplicate|again|extra|second|overcharg|more than once", re.I
        ),
    }
)
# "I ordered the wrong size" is the customer's own slip (an exchange), not a wrong item.
_OWN_SLIP = re.compile(r"\bi (ordered|picked|chose|selected|bought|clicked) (the )?wrong", re.I)


def lacks_complaint_cue(intent: str, text: str) -> bool:
    """True when `text`, guessed as the complaint `intent`, does not say that complaint."""
    cue = _CUES.get(intent)
    if cue is None:
        return False
    return cue.search(text) is None or (intent == "wrong_item" and _OWN_SLIP.search(text) is not None)


def complaint_intent(text: str) -> str | None:
    """The complaint a message makes in so many words, or None."""
    for pattern, intent in _COMPLAINTS:
        if pattern.search(text) and not lacks_complaint_cue(intent, text):
            return intent
    return None


async def run_complaint(turn: OfflineTurn) -> None:
    turn.end_flow()
    turn.state.open_complaint = True
    if re.search(_COURIER, turn.text, re.I):
        turn.request_handoff(
            "I'm sorry about how the delivery was handled; that needs a person from our support team to look "
            "into, so I'm passing your case to them with our conversation so far.",
            f"complaint: courier conduct. customer said: {turn.text[:300]}",
        )
        return
    turn.say(
        "I'm sorry about that; it's not the experience we want you to have. I can help put it right with a "
        "return, an exchange or a refund, or I can connect you with a person. What would you prefer?",
        suggestions=["Return an item", "Exchange an item", "Talk to a person"],
    )


async def run_praise(turn: OfflineTurn) -> None:
    turn.end_flow()
    turn.say(f"That's great to hear{_name(turn)}! Is there anything else I can help with?")


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
PRAISE = FlowSpec("praise", run_praise, fill_nothing)
OUT_OF_SCOPE = FlowSpec("out_of_scope", run_out_of_scope, fill_nothing)
POLICY = FlowSpec("policy_question", run_policy, fill_nothing)
