"""The offline policy engine: full support conversations with no language model.

Each message goes, in order, through
1. the confirmation gate (a pending action runs only on an explicit yes; anything else
   drops it),
2. verification (an email, or a name and zip when asked for them),
3. the current task's slots (an answer to the last question, or a correction),
4. intent classification (embedding similarity), which starts, switches or interrupts
   a task, or, when unsure, asks the customer to rephrase once and then offers a person.

It uses the same `ToolRunner` (tools, verification, confirmation gate) as the GPT dialog,
so both engines obey the same rules, and it is the GPT dialog's fallback: it can pick up
any conversation from its `DialogState`.
"""

from __future__ import annotations

import re
from typing import Any

from dialogs.cards import finalize
from dialogs.entities import emails, order_ids, postal_address, zip_codes
from dialogs.flows import FLOWS, TASKS, OfflineTurn, same_task
from dialogs.flows.asides import Aside, answer_aside, courtesy, find_aside, resume
from dialogs.flows.base import OrdersUnavailable
from dialogs.flows.chat import COMPLAINT_INTENTS, complaint_intent, lacks_complaint_cue
from dialogs.flows.choices import AGREEMENT, pick, spelled_out
from dialogs.flows.identity import verify_from_message
from dialogs.flows.outcomes import report_outcome
from dialogs.flows.requests import split_requests, take_queued
from dialogs.flows.slots import take_choice
from dialogs.intents import LOW_CONFIDENCE, IntentClassifier, IntentGuess
from dialogs.knowledge import KnowledgeBase
from dialogs.tools.gate import is_explicit_yes, is_no
from dialogs.tools.runner import ToolRunner
from dialogs.turn import Channel, Choice, DialogState, EngineName, Reply, TextSink

# A message in the middle of a task switches to another task only when the classifier
# is this sure: "the black one" must not start something new.
SWITCH_CONFIDENCE = 0.5
# Unanswered questions in one task before the engine offers a person.
MAX_REASKS = 1
# A question in the middle of a task starts another task, rather than being answered in
# passing (`dialogs.flows.asides`), only when the classifier is this sure.
CLEAR_REQUEST = 0.65
# Intents that, said in answer to "what's your name?", are a request and not a name.
_REQUESTS = (TASKS - {"verify_identity"}) | {"human_agent", "policy_question", "product_info", "complaint"}
# Read-only tasks a follow-up ("and what about #W...?") may repeat for another order.
_LOOKUPS = frozenset({"order_status", "track_shipment", "refund_status"})
_FOLLOW_UP = re.compile(r"^\s*(and|what about|how about|same for|also|and for)\b", re.I)
_DESTINATION = re.compile(
    r"\b(go|goes|going|sent|send|ship|shipped|deliver|delivered|redirect\w*) to (my|a|the|our|her|his) "
    r"(\w+'?s? )?(place|house|home|address|office|work|flat|apartment)\b",
    re.I,
)
_LEAVING = re.compile(r"\b(bye|goodbye|that'?s all|that'?s it|nothing else)\b", re.I)
_NEVER_MIND = re.compile(r"\b(never ?mind|forget (it|about it)|not anymore|leave it|skip it)\b", re.I)


class OfflineEngine:
    """A `DialogEngine` of slot-filling flows over the shared tools."""

    def __init__(self, tools: ToolRunner, classifier: IntentClassifier, knowledge: KnowledgeBase) -> None:
        self.tools = tools
        self.classifier = classifier
        self.knowledge = knowledge

    @property
    def name(self) -> EngineName:
        return "offline"

    # Its replies are whole templates, ready at once: nothing to stream.
    streams = False

    async def respond(
        self,
        text: str,
        value: dict[str, Any] | None,
        state: DialogState,
        channel: Channel,
        on_text: TextSink | None = None,
    ) -> list[Reply]:
        text = (text or "").strip()
        state.turn += 1
        turn = OfflineTurn(
            text=text,
            value=value,
            state=state,
            channel=channel,
            tools=self.tools,
            knowledge=self.knowledge,
        )
        if state.flow is not None and _last_engine(state) not in (None, self.name):
            # Another engine answered since this task's last question: the question is
            # no longer the one the customer is answering.
            state.flow = None
        if state.queued and _last_engine(state) not in (None, self.name):
            state.queued = []  # the other engine has answered the whole message by now
        flow_before = state.flow.model_copy(deep=True) if state.flow is not None else None
        queued_before = list(state.queued)
        try:
            await self._respond(turn)
            await take_queued(turn, self._start)  # what waited behind a task that just ended
        except OrdersUnavailable:
            state.flow, state.queued = flow_before, queued_before
            turn.replies = []
            turn.say(
                "Sorry, our order system isn't answering right now, so I can't look at that. "
                "Nothing was changed; please try again in a minute."
            )
        if not turn.replies:
            turn.say("Sorry, I didn't catch that. Could you say it another way?")
        state.record_user(text or _describe_value(value), intent=turn.intent)
        replies = finalize(turn.replies, channel, self.name)
        state.record_bot(replies)
        return replies

    async def _respond(self, turn: OfflineTurn) -> None:
        state = turn.state
        outcome = await self.tools.gate.on_message(state, turn.text, turn.value)
        if outcome.kind == "confirmed" and outcome.pending is not None:
            turn.end_flow()
            await report_outcome(turn, outcome.pending, outcome.result)
            return
        if outcome.kind == "declined":
            turn.end_flow()
            turn.say("OK, I haven't changed anything. Is there anything else I can help with?")
            return
        superseded = outcome.kind == "superseded"

        if not state.verified_user_id and await self._verification(turn):
            return
        if state.flow is not None and state.flow.name == "offer" and await self._offer_answer(turn):
            return
        if state.flow is not None and await self._continue_flow(turn, superseded):
            return
        await self._fresh(turn)

    async def _verification(self, turn: OfflineTurn) -> bool:
        """Handles an identity in the message; True when the turn is answered."""
        names_allowed = True
        flow = turn.state.flow
        if (
            flow is not None
            and flow.awaiting == "identity"
            and not emails(turn.text)
            and not zip_codes(turn.text)
        ):
            # "track my shipment" in answer to "what's your name?" is a request, not a name.
            guess = await self._classify(turn)
            names_allowed = not (guess.intent in _REQUESTS and guess.score >= SWITCH_CONFIDENCE)
        outcome = await verify_from_message(turn, names_allowed=names_allowed)
        if outcome in ("failed", "asked"):
            return True
        if outcome != "verified":
            return False
        flow = turn.state.flow
        if flow is not None and flow.name in FLOWS and flow.name != "verify_identity":
            await FLOWS[flow.name].run(turn)  # the task that was waiting for verification
            return True
        turn.end_flow()
        if await self._several(turn):
            return True
        guess = await self._classify(turn)
        if guess.intent in TASKS - {"verify_identity"} and guess.score >= SWITCH_CONFIDENCE:
            await self._start(turn, guess.intent)
        else:
            turn.say("What can I help you with?")
        return True

    async def _several(self, turn: OfflineTurn, *, replacing: bool = False) -> bool:
        """Several requests in the message: answered in order, or queued behind the first
        that needs the customer; False when the message is one request. `replacing`: they
        replace the task under way, whose question the message answered with them."""
        # The pieces, then the whole message, are classified one after another; embedded
        # together first, the customer waits for one pass of the model.
        requests = await split_requests(
            turn.text, lambda text: self._classify(turn, text), self.classifier.prepare
        )
        if len(requests) < 2:
            return False
        if replacing:
            turn.end_flow()
        turn.state.queued = requests
        await take_queued(turn, self._start, announce=True)
        return True

    async def _offer_answer(self, turn: OfflineTurn) -> bool:
        """The answer to a yes/no offer ("Would you like to return it instead?")."""
        offer = turn.flow.slots
        turn.end_flow()
        if is_explicit_yes(turn.text):
            await self._start(turn, str(offer["intent"]), dict(offer.get("carry") or {}))
            return True
        if is_no(turn.text):
            turn.say("OK. Is there anything else I can help with?")
            return True
        return False

    async def _continue_flow(self, turn: OfflineTurn, superseded: bool) -> bool:
        """Feeds the message to the current task; True when the turn is answered."""
        flow = turn.flow
        if flow.awaiting and await self._several(turn, replacing=True):
            # "Which order?" answered with "has #W1 shipped, and cancel #W1": the requests
            # the answer makes take the question's place, none of them dropped.
            return True
        spec = FLOWS[flow.name]
        awaiting = flow.awaiting
        before = flow.slots.get(awaiting) if awaiting else None
        filled = await spec.fill(turn)
        if flow.choices and awaiting and flow.slots.get(awaiting) == before:
            # The question offered options: "the first one", "the address", "by mistake".
            picked = pick(turn.text, flow.choices)
            if picked is AGREEMENT and not filled:
                turn.say(
                    f"Which one do you mean: {spelled_out(flow.choices)}?",
                    suggestions=[choice.label for choice in flow.choices],
                )
                return True
            if isinstance(picked, Choice):
                take_choice(turn, awaiting, picked.value)
                filled = True
        if filled:
            flow.attempts = 0
            turn.state.low_confidence_count = 0
            await spec.run(turn)
            return True
        if is_no(turn.text) or _NEVER_MIND.search(turn.text):
            turn.end_flow()
            if _LEAVING.search(turn.text):
                turn.state.queued = []  # "forget it, bye": nothing else either
            turn.say("OK, I've left that; nothing was changed. Is there anything else I can help with?")
            return True
        opening, rest = courtesy(turn.text)
        # A bare "ok" to a summary is not a yes, and not an aside either: the summary goes.
        plain = opening is not None and not rest and not (superseded and opening == "ack")
        aside: Aside | None = opening if plain else None
        guess = await self._classify(turn, rest)
        confident = guess.score >= SWITCH_CONFIDENCE
        same = same_task(guess.intent, flow.name)
        new_task = guess.intent in _REQUESTS and not same and guess.score >= CLEAR_REQUEST
        aside = aside or await find_aside(turn, guess, rest, sure=SWITCH_CONFIDENCE, new_task=new_task)
        if aside is not None:
            # Answered in passing; the task carries on, and nothing counts as not understood.
            turn.state.low_confidence_count = 0
            await answer_aside(turn, aside, rest or turn.text)
            await resume(turn, flow, spec.run)
            return True
        if superseded:
            turn.end_flow()
            turn.say("OK, I haven't done that.")
            return False  # and the message is handled afresh
        if confident and not same:
            carry = {"order_id": flow.slots["order_id"]} if flow.slots.get("order_id") else {}
            await self._start(turn, guess.intent, carry)
            return True
        flow.attempts += 1
        if flow.attempts > MAX_REASKS:
            turn.request_handoff(
                "I'm sorry, I'm having trouble following. I'm passing you to a person from our "
                "support team who can help.",
                "offline engine could not fill a slot after repeated questions",
            )
            return True
        turn.say("Sorry, I didn't quite get that.")
        await spec.run(turn)
        return True

    async def _fresh(self, turn: OfflineTurn) -> None:
        """A message outside any task: start what it asks for, or ask again."""
        state = turn.state
        if not turn.text:
            if turn.value and turn.value.get("order_id"):
                await self._start(turn, "order_status")
                return
            turn.say("Sorry, I didn't catch that. What can I help you with?")
            return
        if is_no(turn.text) and len(turn.text.split()) <= 3:
            await FLOWS["goodbye"].run(turn)
            return
        if is_explicit_yes(turn.text):
            turn.say("Great. What can I help you with?")
            return
        if await self._several(turn):
            return
        guess = await self._classify(turn)
        follow_up = _previous_task(state) if _FOLLOW_UP.match(turn.text) and order_ids(turn.text) else None
        if follow_up:
            # "and what about #W...?" asks the last question again about another order.
            await self._start(turn, follow_up)
            return
        if guess.score < LOW_CONFIDENCE:
            state.low_confidence_count += 1
            state.not_understood_turn = state.turn
            if state.low_confidence_count >= 2:
                state.low_confidence_count = 0
                turn.request_handoff(
                    "I'm sorry, I'm still not sure what you need. "
                    "I'm passing you to a person from our support team who can help.",
                    "offline engine did not understand the customer twice",
                )
            else:
                turn.say(
                    "Sorry, I'm not sure I understood. Could you put it another way? For example, "
                    "“where is my order?” or “I want to return an item”."
                )
            return
        state.low_confidence_count = 0
        if guess.intent != "out_of_scope":
            state.out_of_scope_count = 0  # only requests in a row count
        await self._start(turn, guess.intent)

    async def _start(self, turn: OfflineTurn, intent: str, carry: dict[str, Any] | None = None) -> None:
        spec = FLOWS[intent]
        turn.intent = intent
        turn.start_flow(spec.name, {**(carry or {}), "request": turn.text})
        await spec.fill(turn)
        await spec.run(turn)

    async def _classify(self, turn: OfflineTurn, text: str = "") -> IntentGuess:
        """The intent of `text` (default: the whole message)."""
        text = text or turn.text
        guess = await self.classifier.classify(text)
        if guess.intent != "change_address" and (
            postal_address(text) is not None or _DESTINATION.search(text)
        ):
            # A whole postal address, or a place named as where it should go, says where
            # something should go, whatever verb comes with it ("ship order ... to 12 Park
            # Lane ..." reads like tracking, "one of my orders should go to my sister's
            # place" like listing orders).
            guess = IntentGuess(
                "change_address", max(guess.score, SWITCH_CONFIDENCE), guess.intent, guess.score
            )
        elif guess.intent not in COMPLAINT_INTENTS and (said := complaint_intent(text)) is not None:
            # "My parcel never arrived" reads like tracking, but it is a complaint: it
            # starts the complaint's flow, not a status read-back.
            guess = IntentGuess(said, max(guess.score, SWITCH_CONFIDENCE), guess.intent, guess.score)
        elif lacks_complaint_cue(guess.intent, text):
            # Said no such problem: the runner-up, unless it is a complaint not said either.
            fallback = 0.0 if lacks_complaint_cue(guess.runner_up, text) else guess.runner_up_score
            guess = IntentGuess(guess.runner_up, fallback, guess.intent, guess.score)
        turn.intent = guess.intent
        return guess


def _last_engine(state: DialogState) -> str | None:
    for entry in reversed(state.transcript):
        if entry.role == "bot":
            return entry.engine
    return None


def _previous_task(state: DialogState) -> str | None:
    """The intent of the customer's last task message, for follow-ups like "and #W...?"."""
    for entry in reversed(state.transcript):
        if entry.role == "user" and entry.intent in _LOOKUPS:
            return entry.intent
    return None


def _describe_value(value: dict[str, Any] | None) -> str:
    if not value:
        return ""
    return "[" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "]"
