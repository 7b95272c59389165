"""The handoff packet: why the conversation came to a person, who the customer is, their
orders, what the bot did and refused, and a summary of the conversation.

The summary comes from the chat model when one is configured (a short, factual paragraph)
and is extractive otherwise: the customer's own words, picked by rule, so it never says
anything the customer did not.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from bot.handoff.records import OrderLine, Packet, Trigger
from dialogs.turn import DialogState
from dialogs.wording import describe_item
from providers.llm import ChatModel
from shop.errors import AftercareError
from shop.retail import RetailService
from shop.rules import money

log = logging.getLogger(__name__)

_SUMMARY_PROMPT = (
    "You summarise a customer-support chat for the human agent taking it over. In at most "
    "three sentences: what the customer wants, what the assistant already did or refused, "
    "and what is still open. Facts from the chat only; no greeting, no advice."
)
_MAX_ORDERS = 10


async def build_packet(
    state: DialogState,
    reason: str,
    trigger: Trigger,
    retail: RetailService,
    model: ChatModel | None = None,
    *,
    summary_timeout_s: float = 8.0,
) -> Packet:
    packet = Packet(
        reason=reason or trigger.value,
        trigger=trigger,
        summary=extractive_summary(state),
        sentiment=state.sentiment[-10:],
    )
    for action in state.actions:
        (packet.actions_taken if action.ok else packet.actions_refused).append(
            action.message if action.ok else f"{action.tool}: {action.message}"
        )
    for call in state.tool_calls:
        if (
            not call.ok
            and call.message
            and call.tool not in {"find_user_id_by_email", "find_user_id_by_name_zip"}
        ):
            packet.actions_refused.append(f"{call.tool}: {call.message}")
    packet.actions_refused = list(dict.fromkeys(packet.actions_refused))[-10:]
    if state.verified_user_id:
        await _add_customer(packet, state.verified_user_id, retail)
    if model is not None:
        try:
            packet.summary = await _model_summary(model, state, summary_timeout_s) or packet.summary
        except (AftercareError, TimeoutError) as exc:
            log.warning("handoff summary from the chat model failed (%s); using the extractive one", exc)
    return packet


def extractive_summary(state: DialogState) -> str:
    said = [entry.text.strip() for entry in state.transcript if entry.role == "user" and entry.text.strip()]
    if not said:
        return "The customer has not written anything yet."
    first, recent = said[0], said[-3:]
    parts = [f"The customer opened with: “{_clip(first)}”."]
    later = [text for text in recent if text != first]
    if later:
        parts.append("Most recently: " + " / ".join(f"“{_clip(text)}”" for text in later) + ".")
    if state.verified_user_id:
        parts.append(f"Verified as {state.verified_user_id}.")
    else:
        parts.append("Not verified.")
    done = [a.message for a in state.actions if a.ok]
    if done:
        parts.append("Done in this chat: " + " ".join(done))
    return " ".join(parts)


async def _add_customer(packet: Packet, user_id: str, retail: RetailService) -> None:
    try:
        customer = await retail.get_user_details(user_id, acting_user_id=user_id)
    except AftercareError as exc:
        log.warning("handoff packet without the customer's profile: %s", exc)
        packet.customer_id = user_id
        return
    packet.customer_id = user_id
    name = customer["name"]
    packet.customer_name = f"{name['first_name']} {name['last_name']}"
    packet.customer_email = customer["email"]
    for order_id in customer["orders"][-_MAX_ORDERS:]:
        try:
            order = await retail.get_order_details(order_id, acting_user_id=user_id)
        except AftercareError:
            continue
        total = sum((money(item["price"]) for item in order["items"]), Decimal(0))
        packet.orders.append(
            OrderLine(
                order_id=order["order_id"],
                status=order["status"],
                items=[describe_item(item) for item in order["items"]],
                total=f"${total}",
            )
        )


async def _model_summary(model: ChatModel, state: DialogState, timeout_s: float) -> str:
    lines = [f"{'Customer' if e.role == 'user' else 'Assistant'}: {e.text}" for e in state.spoken()[-40:]]
    messages = [
        {"role": "system", "content": _SUMMARY_PROMPT},
        {"role": "user", "content": "\n".join(lines)},
    ]
    deadline = asyncio.get_running_loop().time() + timeout_s
    turn = await model.complete(messages, [], deadline=deadline)
    return turn.text.strip()


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
