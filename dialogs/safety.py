"""Content safety around the dialog engine: what the bot does about what
`providers.safety` finds in a customer's message and in the model's answer.

- Abuse (insults, slurs, threats, harassment aimed at the assistant or the staff): the
  dialog does not run. The first time the customer gets one calm, short line; from the
  second on the conversation goes to a person (a reply asking for a handoff, reason
  "abusive messages"). When nobody can take it, the handoff desk ends the chat politely
  (`end_chat`), and every later message gets one line saying so.
- Frustration is not abuse: "where the hell is my parcel?" reaches the dialog like any
  message, and sustained negative sentiment offers a person (`dialogs.engine`).
- A message about harming oneself gets a caring line and the offer of a person.
- Prompt injection ("ignore previous instructions", a fake "system:" line, a typed tool
  call): the message is answered as usual, but marked, so the GPT dialog tells the model
  it is the customer's text and never instructions (the offline engine has no
  instructions to subvert; the attempt is counted and noted for staff).
- The model's answer, when the provider checks answers (Azure; the local rules check that
  it does not repeat the system prompt): an unfit answer is replaced by a refusal, in the
  reply and in the transcript. A streamed answer has already been shown in part (Teams
  replaces it with the final text; a call has spoken its first sentences).

No message text is logged here: only what was found and by which rule.
"""

from __future__ import annotations

import logging
from typing import Any

from dialogs.cards import finalize
from dialogs.gpt import REFUSAL
from dialogs.turn import Channel, DialogEngine, DialogState, EngineName, Reply, TextSink
from providers.safety import CLEAN, ContentSafety, SafetyVerdict

log = logging.getLogger(__name__)

ABUSE_REASON = "abusive messages"
CALM = "I'm here to help with your order. Let's keep it respectful, please: what can I do for you?"
TO_A_PERSON = (
    "I'm not able to continue the conversation like this, so I'm passing it to a person from "
    "our support team."
)
CHAT_ENDED = (
    "No one from our support team can take this conversation right now, so I'm ending our chat "
    "here. If you need help with an order later, you're welcome to start a new chat."
)
ENDED = "This chat has ended. If you need help with an order, please start a new chat."
SELF_HARM = (
    "I'm really sorry you're feeling this way. If you might hurt yourself, please call your local "
    "emergency number or a crisis line right now; you don't have to go through this alone. "
    "I can also pass you to a person from our team."
)


class SafetyGuard:
    """A `DialogEngine` that checks each message before `inner` sees it, and each model
    answer before the customer does."""

    def __init__(self, inner: DialogEngine, safety: ContentSafety) -> None:
        self.inner = inner
        self._safety = safety

    @property
    def name(self) -> EngineName:
        return self.inner.name

    @property
    def streams(self) -> bool:
        return self.inner.streams

    async def respond(
        self,
        text: str,
        value: dict[str, Any] | None,
        state: DialogState,
        channel: Channel,
        on_text: TextSink | None = None,
    ) -> list[Reply]:
        if state.safety.ended:
            return self._answer_alone(text, value, state, channel, [Reply(text=ENDED)])
        verdict = await self._safety.check(text, direction="input") if text.strip() else CLEAN
        if verdict.findings:
            log.info("content safety, turn %d: %s", state.turn + 1, verdict.describe())
        if verdict.offensive:
            return self._abuse(text, value, state, channel, verdict)
        if verdict.self_harm:
            reply = Reply(text=SELF_HARM, suggested_actions=["Talk to a person"])
            return self._answer_alone(text, value, state, channel, [reply], verdict)
        if verdict.injection:
            state.safety.injection_attempts += 1
            state.safety.injection_now = True
        try:
            replies = await self.inner.respond(text, value, state, channel, on_text=on_text)
        finally:
            state.safety.injection_now = False
        if verdict.injection:
            state.record_note(
                f"safety: answered as the customer's text, not instructions ({verdict.describe()})"
            )
        if self._safety.checks_output:
            replies = [await self._checked(reply, state) for reply in replies]
        return replies

    def _abuse(
        self,
        text: str,
        value: dict[str, Any] | None,
        state: DialogState,
        channel: Channel,
        verdict: SafetyVerdict,
    ) -> list[Reply]:
        state.safety.abusive_messages += 1
        if state.safety.abusive_messages == 1:
            return self._answer_alone(text, value, state, channel, [Reply(text=CALM)], verdict)
        # Every abusive message from the second on asks again: the desk keeps one place in
        # the queue, and tells the customer what happens next (or ends the chat).
        state.handoff_requested = True
        reply = Reply(text=TO_A_PERSON, handoff_requested=True, handoff_reason=ABUSE_REASON)
        return self._answer_alone(text, value, state, channel, [reply], verdict)

    def _answer_alone(
        self,
        text: str,
        value: dict[str, Any] | None,
        state: DialogState,
        channel: Channel,
        replies: list[Reply],
        verdict: SafetyVerdict | None = None,
    ) -> list[Reply]:
        """A turn the dialog does not see, kept in the state as any turn is."""
        state.turn += 1
        # Not a yes to anything: a proposal does not outlive the message (as in the gate).
        state.pending_action = None
        state.record_user(text or ("(a card)" if value else ""))
        if verdict is not None:
            state.record_note(f"safety: {verdict.describe()}; the dialog did not run")
        shaped = finalize(replies, channel, self.inner.name)
        state.record_bot(shaped)
        return shaped

    async def _checked(self, reply: Reply, state: DialogState) -> Reply:
        if reply.engine != "gpt":
            return reply  # the offline engine says only what its templates and the shop's tools say
        verdict = await self._safety.check(reply.text, direction="output")
        if not verdict.unfit_answer:
            return reply
        log.warning("content safety withheld the model's answer, turn %d: %s", state.turn, verdict.describe())
        for entry in state.transcript:
            if entry.role == "bot" and entry.turn == state.turn and entry.text == reply.text:
                entry.text = REFUSAL
        state.record_note(f"safety: the model's answer was withheld ({verdict.describe()})")
        return reply.model_copy(
            update={"text": REFUSAL, "speak": REFUSAL, "card": None, "suggested_actions": []}
        )


def end_chat(state: DialogState, why: str) -> Reply:
    """Ends the conversation after abuse (nobody can take it): the customer's last line."""
    state.safety.ended = True
    state.record_note(f"safety: chat ended ({why})")
    reply = Reply(text=CHAT_ENDED, speak=CHAT_ENDED)
    state.record_bot([reply])
    return reply
