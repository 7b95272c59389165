"""One turn of the offline engine as the flows see it: the message, the state, the
channel, the tools, and the replies being built, plus the steps every task shares
(make sure the customer is verified, settle which order they mean).

Flows are plain async functions over an `OfflineTurn`; everything they remember goes
into `state.flow` (name, slots, the slot last asked for), so a flow picks up exactly
where it stopped on whichever app instance serves the next message.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from dialogs.knowledge import KnowledgeBase
from dialogs.tools.definition import ToolResult
from dialogs.tools.runner import ToolRunner
from dialogs.turn import Channel, Choice, DialogState, FlowState, Reply
from dialogs.wording import describe_items, status_words
from shop.models import Customer, Order, OrderItem

Flow = Callable[["OfflineTurn"], Awaitable[None]]


class OrdersUnavailable(Exception):
    """The order store did not answer during a turn (raised out of `OfflineTurn.tool`)."""


Filler = Callable[["OfflineTurn"], Awaitable[bool]]


@dataclass(frozen=True)
class FlowSpec:
    """A task: `fill` reads a message into the task's slots (True when something
    changed); `run` moves the task on as far as the slots allow, asking for the next
    missing one or proposing the action."""

    name: str
    run: Flow
    fill: Filler


# How many orders a question lists before it says "and N more" (voice lists fewer).
_LIST_LIMIT = MappingProxyType({"voice": 3, "other": 6})


@dataclass
class OfflineTurn:
    text: str
    value: dict[str, Any] | None
    state: DialogState
    channel: Channel
    tools: ToolRunner
    knowledge: KnowledgeBase
    intent: str | None = None
    replies: list[Reply] = field(default_factory=list)
    # True while an aside is answered in the middle of a task (`dialogs.flows.asides`).
    in_aside: bool = False
    _customer: Customer | None = None
    _orders: dict[str, Order] = field(default_factory=dict)

    # -- state -------------------------------------------------------------------------------

    @property
    def flow(self) -> FlowState:
        if self.state.flow is None:
            raise RuntimeError("no flow is active")
        return self.state.flow

    @property
    def slots(self) -> dict[str, Any]:
        return self.flow.slots

    def start_flow(self, name: str, slots: dict[str, Any] | None = None) -> None:
        self.state.flow = FlowState(name=name, slots=dict(slots or {}))

    def end_flow(self) -> None:
        self.state.flow = None

    # -- replies -------------------------------------------------------------------------------

    def say(
        self,
        text: str,
        *,
        card: dict[str, Any] | None = None,
        suggestions: Sequence[str] = (),
        handoff_reason: str = "",
    ) -> None:
        self.replies.append(
            Reply(
                text=text,
                card=card,
                suggested_actions=list(suggestions),
                handoff_requested=bool(handoff_reason),
                handoff_reason=handoff_reason,
            )
        )

    def ask(
        self, slot: str, text: str, suggestions: Sequence[str] = (), choices: Sequence[Choice] = ()
    ) -> None:
        """Asks one question and remembers which slot the answer fills and, for a
        question that offers options, the options (their labels are the buttons unless
        `suggestions` says otherwise)."""
        self.flow.awaiting = slot
        self.flow.choices = [choice.model_copy() for choice in choices]
        self.say(text, suggestions=suggestions or [choice.label for choice in choices])

    def offer(self, intent: str, question: str, slots: dict[str, Any] | None = None) -> None:
        """Asks a yes/no question whose yes starts `intent` with `slots` (no action runs
        on this yes: the started flow still proposes and asks for its own confirmation)."""
        self.state.flow = FlowState(name="offer", slots={"intent": intent, "carry": dict(slots or {})})
        self.flow.awaiting = "offer"
        self.say(question, suggestions=["Yes", "No"])

    def request_handoff(self, text: str, reason: str) -> None:
        self.state.handoff_requested = True
        self.end_flow()
        self.say(text, handoff_reason=reason)

    # -- tools ---------------------------------------------------------------------------------

    async def tool(self, name: str, **arguments: Any) -> ToolResult:
        result = await self.tools.call(name, arguments, self.state)
        if result.unavailable:
            # Flows read failures as refusals ("not found"); an outage is neither, so the
            # turn stops here and the task stays where it was for the customer's retry.
            raise OrdersUnavailable(result.error)
        return result

    async def customer(self) -> Customer | None:
        if self._customer is None and self.state.verified_user_id:
            result = await self.tool("get_user_details")
            self._customer = result.data if result.ok else None
        return self._customer

    async def order(self, order_id: str) -> ToolResult:
        result = await self.tool("get_order_details", order_id=order_id)
        if result.ok:
            self._orders[order_id] = result.data
        return result

    async def orders(self) -> list[Order]:
        """Every order of the verified customer, in the profile's order."""
        customer = await self.customer()
        found = []
        for order_id in customer["orders"] if customer else []:
            if order_id not in self._orders:
                await self.order(order_id)
            if order_id in self._orders:
                found.append(self._orders[order_id])
        return found

    def order_line(self, order: Order) -> str:
        if self.channel.is_voice:
            # Heard, not read: the id, its status and what it is, without every option.
            items = order["items"]
            first = str(items[0].get("name", "an item")) if items else "no items"
            more = len(items) - 1
            rest = f" and {more} more item{'s' if more > 1 else ''}" if more > 0 else ""
            return f"{order['order_id']}, {status_words(order['status'])}: {first}{rest}"
        return f"{order['order_id']} ({status_words(order['status'])}): {describe_items(order['items'])}"

    def order_list(self, orders: list[Order]) -> str:
        limit = _LIST_LIMIT["voice" if self.channel.is_voice else "other"]
        lines = [self.order_line(o) for o in orders[:limit]]
        more = len(orders) - limit
        if self.channel.is_voice:
            text = "; ".join(lines)
            return text + (f"; and {more} more." if more > 0 else ".")
        text = "\n".join(f"- {line}" for line in lines)
        return text + (f"\n- and {more} more" if more > 0 else "")


async def need_verified(turn: OfflineTurn) -> bool:
    """True when the customer is verified; otherwise asks how to verify them."""
    if turn.state.verified_user_id:
        return True
    if turn.channel.is_voice:
        # Names and digits are heard far better than a spoken email address.
        turn.ask(
            "identity", "First I need to confirm who you are. Please tell me your full name and zip code."
        )
    else:
        turn.ask(
            "identity",
            "First I need to confirm who you are. What's the email address on your account? "
            "(Or tell me your full name and zip code.)",
        )
    return False


async def need_order(
    turn: OfflineTurn,
    allowed: Collection[str] | None,
    refuse: Callable[[Order], tuple[str, str | None]],
    none_left: str,
    question: str,
    *,
    redirect: bool = False,
) -> Order | None:
    """The order the flow is about, or None after asking, refusing or explaining.

    `allowed` statuses (None: any); `refuse(order)` gives (why a named order does not
    qualify, an intent to offer instead or None), and the flow ends; `none_left` when no
    order qualifies; `question` asks which one when several do. A single qualifying order
    is taken without asking (the summary the customer confirms names it anyway), except
    when the order they named was not found: then they are asked, never given another.
    `redirect`: when no order qualifies but the customer has only one, or named one by
    its items, `refuse` explains that one and its alternative is offered ("my bike never
    arrived" about a bike still on its way: "shall I look into the delay?").
    """
    order_id = turn.slots.get("order_id")
    missing = False
    if order_id:
        result = await turn.order(order_id)
        if not result.ok:
            # Never swap in another order for one the customer named: ask instead.
            missing = True
            turn.slots.pop("order_id", None)
            turn.say(f"I couldn't find order {order_id} on your account.")
        elif allowed is not None and result.data["status"] not in allowed:
            text, alternative = refuse(result.data)
            if alternative:
                turn.offer(alternative, text, {"order_id": order_id})
            else:
                turn.end_flow()
                turn.say(text)
            return None
        else:
            order: Order = result.data
            return order
    every = await turn.orders()
    candidates = [o for o in every if allowed is None or o["status"] in allowed]
    hinted = _orders_with_items(turn, candidates)
    if len(hinted) == 1:
        candidates = hinted
    if not candidates:
        named = _orders_with_items(turn, every) or (every if redirect else [])
        if len(named) == 1 and not missing:
            # "return the backpack" when its order no longer qualifies: say why that one.
            text, alternative = refuse(named[0])
            if alternative and redirect:
                turn.offer(alternative, text, {"order_id": named[0]["order_id"]})
            else:
                turn.end_flow()
                turn.say(text)
        else:
            turn.end_flow()
            turn.say(none_left)
        return None
    if len(candidates) == 1 and not missing:
        turn.slots["order_id"] = candidates[0]["order_id"]
        return candidates[0]
    turn.ask(
        "order_id",
        f"{question}\n{turn.order_list(candidates)}",
        suggestions=[o["order_id"] for o in candidates[:6]],
        choices=[
            Choice(label=o["order_id"], value=o["order_id"], words=item_words(o["items"])) for o in candidates
        ],
    )
    return None


def item_words(items: Sequence[OrderItem]) -> list[str]:
    """Words of the items' names by which a customer points at them ("the kettle one")."""
    words = [w for item in items for w in re.findall(r"[a-z]+", str(item.get("name", "")).lower())]
    return list(dict.fromkeys(w for w in words if len(w) > 3))


def _orders_with_items(turn: OfflineTurn, orders: list[Order]) -> list[Order]:
    """Orders holding a product the message names ("return the kettle")."""
    said = f"{turn.text} {turn.slots.get('request', '')}"
    words = set(re.findall(r"[a-z]+", said.lower()))
    words |= {w[:-1] for w in words if w.endswith("s")}
    return [
        order
        for order in orders
        if any(
            word in words
            for item in order["items"]
            for word in re.findall(r"[a-z]+", str(item.get("name", "")).lower())
            if len(word) > 3
        )
    ]
