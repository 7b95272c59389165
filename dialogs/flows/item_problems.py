"""An item that arrived damaged or faulty, or is not the item ordered (the shop's damaged
and wrong items policy, `prompts/knowledge/damaged-items.md`).

The flow asks which order and which item, what came instead (wrong items), and a photo
where the channel takes pictures; then offers what the policy gives: the item again at
no cost, or a full refund. A refund is the return flow and a replacement the exchange
flow (the same variant, or another one when it is out of stock), so each ends in the
usual summary and the customer's yes. When a return or exchange was already requested
for the order, a person takes the case, written up.
"""

from __future__ import annotations

from dialogs.flows.actions import RETURN, already_requested
from dialogs.flows.base import FlowSpec, OfflineTurn, need_order, need_verified
from dialogs.flows.choices import named
from dialogs.flows.complaints import RECEIVED, case, cite, fill_complaint, hand_over, sorry_first
from dialogs.flows.slots import ask_items, chosen_items, fill_items
from dialogs.flows.swap import EXCHANGE
from dialogs.turn import Choice
from dialogs.wording import describe_items, join_words, status_words
from shop.models import Order

_REMEDIES = (
    Choice(
        label="A replacement",
        value="replacement",
        words=["replace", "replacement", "new one", "another one", "send", "exchange", "right one", "swap"],
    ),
    Choice(
        label="A refund", value="refund", words=["refund", "money back", "return", "my money", "reimburse"]
    ),
)
_POLICY = "a free replacement or a full refund, sent back with a free label (Damaged and wrong items policy)"


def _not_received_yet(order: Order) -> tuple[str, str | None]:
    return (
        f"Order {order['order_id']} is {status_words(order['status'])}, so it hasn't been delivered yet; "
        "once it arrives, tell me if anything is wrong with it.",
        None,
    )


async def _item_problem(turn: OfflineTurn, *, wrong: bool) -> None:
    turn.state.open_complaint = True
    what = "the wrong item" if wrong else "a damaged item"
    sorry_first(turn, f"I'm sorry you received {what}; I'll help you put it right.")
    if not await need_verified(turn):
        return
    order = await need_order(
        turn,
        RECEIVED,
        _not_received_yet,
        "None of your orders has been delivered yet, so nothing could have arrived "
        + ("wrong." if wrong else "damaged."),
        "Which order was it?",
        redirect=True,
    )
    if order is None:
        return
    if not turn.slots.get("item_ids"):
        fill_items(turn, order, str(turn.slots.get("request", "")))
    if not turn.slots.get("item_ids"):
        if len(order["items"]) == 1:
            turn.slots["item_ids"] = [order["items"][0]["item_id"]]
        else:
            ask_items(turn, order, "Which item was wrong?" if wrong else "Which item arrived damaged?")
            return
    items = chosen_items(order, turn.slots["item_ids"])
    if wrong and "received" not in turn.slots:
        turn.ask("received", f"What did you receive instead of the {describe_items(items)}?")
        return
    if turn.channel.takes_photos and "photos" not in turn.slots:
        subject = "what you received" if wrong else "the damage, and of the box if it's damaged too"
        turn.ask("photos", f"Could you send a photo of {subject}? (Or say “skip”.)")
        return
    facts = [
        f"item: {describe_items(items)}",
        f"received instead: {turn.slots['received']}"
        if wrong
        else f"customer said: {turn.slots.get('request', '')}",
        _photos_fact(turn),
    ]
    if already_requested(order):
        hand_over(
            turn,
            f"A return or exchange has already been requested for order {order['order_id']}, so a person "
            "from our team will sort this out; I'm passing your case to them with everything you told me.",
            case(what, order, [*facts, "a return or exchange was already requested for this order"], _POLICY),
        )
        return
    remedy = turn.slots.get("remedy")
    said = named(str(turn.slots.get("request", "")), list(_REMEDIES))
    if remedy is None and said is not None:
        remedy = said.value  # "it came broken, I want my money back"
    if remedy is None:
        keep = (
            "" if turn.channel.takes_photos else " Please keep the item and its packaging until it's sorted."
        )
        turn.ask(
            "remedy",
            "Under our damaged and wrong items policy, we can send you "
            + ("the item you ordered" if wrong else "a replacement")
            + " at no cost, or refund it in full; either way you send it back with a free prepaid label."
            + keep
            + " Which would you prefer?"
            + cite(turn, "damaged-items", "Replacement or refund"),
            choices=_REMEDIES,
        )
        return
    await _remedy(turn, order, remedy)


async def _remedy(turn: OfflineTurn, order: Order, remedy: str) -> None:
    """Hands over to the return flow (a refund) or the exchange flow (the same item again,
    or another variant when it is out of stock); both end in the usual proposal."""
    item_ids = list(turn.slots["item_ids"])
    slots = {
        "order_id": order["order_id"],
        "item_ids": item_ids,
        "request": str(turn.slots.get("request", "")),
    }
    if remedy == "refund":
        turn.start_flow("return_items", slots)
        await RETURN.run(turn)
        return
    in_stock = []
    for item in chosen_items(order, item_ids):
        product = await turn.tool("get_product_details", product_id=str(item["product_id"]))
        variant = (product.data.get("variants") or {}).get(item["item_id"]) if product.ok else None
        in_stock.append(bool(variant and variant.get("available")))
    if all(in_stock):
        turn.start_flow("exchange_items", {**slots, "variant_text": "", "new_item_ids": item_ids})
    else:
        turn.say(
            "That exact one is out of stock right now, so I can exchange it for another version instead."
        )
        turn.start_flow("exchange_items", {**slots, "variant_text": ""})
    await EXCHANGE.run(turn)


def _photos_fact(turn: OfflineTurn) -> str:
    photos = turn.slots.get("photos")
    if photos:
        return f"photos sent in the chat: {join_words([str(p) for p in photos])}"
    if turn.channel.takes_photos:
        return "no photos sent"
    return "photos: this channel takes none; ask by email if needed"


async def run_damaged(turn: OfflineTurn) -> None:
    await _item_problem(turn, wrong=False)


async def run_wrong_item(turn: OfflineTurn) -> None:
    await _item_problem(turn, wrong=True)


DAMAGED = FlowSpec("damaged_item", run_damaged, fill_complaint)
WRONG_ITEM = FlowSpec("wrong_item", run_wrong_item, fill_complaint)
