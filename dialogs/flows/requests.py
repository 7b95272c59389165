"""Several requests in one message: "what's the status of #W1? and has #W2 shipped yet",
"cancel the kettle order, then change my account address".

`split_requests` cuts a message where a new request may start (a sentence's end, a
semicolon, "and", "also", "then", "plus", a comma) and keeps a cut only when the piece
after it reads as a request of its own; anything else is put back ("return the kettle
and the mouse" is one request, about two items). One request naming several orders for
the same task is one request per order. The engine answers them in order: the ones it
can answer at once are answered, and from the first that needs the customer (a question,
a confirmation) the rest wait in `DialogState.queued`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from dialogs.entities import order_ids
from dialogs.flows import same_task
from dialogs.flows.asides import TASK_NAMES, courtesy
from dialogs.flows.base import OfflineTurn
from dialogs.intents import LOW_CONFIDENCE, IntentGuess
from dialogs.turn import QueuedRequest, Reply
from dialogs.wording import join_words

Classify = Callable[[str], Awaitable[IntentGuess]]
Prepare = Callable[[list[str]], Awaitable[None]]
# Starts a task for the message in `turn.text`: (turn, intent, slots carried into it).
Start = Callable[[OfflineTurn, str, dict[str, Any] | None], Awaitable[None]]

# A piece starts a request of its own only when the classifier is this sure of it.
SPLIT_CONFIDENCE = 0.5
# What a piece may be to count as a request (a greeting, thanks or an email is not).
SPLITTABLE = frozenset(
    {
        "order_status",
        "list_orders",
        "track_shipment",
        "cancel_order",
        "change_address",
        "change_payment",
        "modify_items",
        "return_items",
        "exchange_items",
        "refund_status",
        "policy_question",
        "product_info",
        "human_agent",
        "complaint",
        "not_received",
        "late_delivery",
        "damaged_item",
        "wrong_item",
        "charged_twice",
    }
)
# How a request is named when the bot says what it will do next.
REQUEST_NAMES = {
    **TASK_NAMES,
    "policy_question": "your question about our policies",
    "product_info": "your question about our products",
    "human_agent": "passing you to a person",
    "complaint": "the problem you reported",
}
_ORDER_ID = re.compile(r"#?\b[wW]\s?(\d{7})\b")
_WORD = re.compile(r"[a-z']+")
# Words that make a short piece a request of its own.
# fmt: off
_ASKING = frozenset({
    "cancel", "track", "return", "exchange", "change", "update", "swap", "switch", "refund", "check", "show",
    "list", "find", "send", "where", "what", "what's", "when", "how", "is", "has", "did", "can", "status",
})
# fmt: on
_FILLER = frozenset({"order", "orders", "number", "the", "my", "too", "as", "well", "please", "also", "one"})
# How a request after the first one starts: a question, or a directive ("cancel ...",
# "I'd like ...", "can you ..."). "I ordered it by mistake" or "it doesn't fit" after a
# request explains it.
_REQUEST_FORM = re.compile(
    r"\?|^(?:and |also |then |but )*(?:please|pls|can|could|would|will|do|does|did|is|are|has|have|"
    r"what|what's|whats|where|where's|wheres|when|why|how|which|who|tell|show|give|send|check|track|"
    r"cancel|return|exchange|change|update|swap|switch|refund|get|find|list|let|help|look|i'?d like|"
    r"i would like|i want|i wanna|i need|need|want|id like|i'?m also|is there|any)\b",
    re.I,
)
# (task, intent of a piece that details it): where the money goes, how a difference is paid.
_DETAILS = frozenset(
    {
        ("return_items", "refund_status"),
        ("return_items", "change_payment"),
        ("cancel_order", "refund_status"),
        ("exchange_items", "change_payment"),
        ("exchange_items", "refund_status"),
        ("modify_items", "change_payment"),
        # A complaint and the remedy or lookup that goes with it: "it came broken and I want
        # a refund", "my parcel is late, where is it?".
        ("damaged_item", "return_items"),
        ("damaged_item", "exchange_items"),
        ("wrong_item", "return_items"),
        ("wrong_item", "exchange_items"),
        ("late_delivery", "track_shipment"),
        ("late_delivery", "order_status"),
        ("not_received", "track_shipment"),
        ("not_received", "refund_status"),
        ("charged_twice", "refund_status"),
    }
)
# The name is capitalised, as names are written: "I'm Noah", not "I'm waiting for it".
_INTRODUCTION = re.compile(
    r"^(?i:this is|it's|it is|my name is|my name's|i am|i'm)\s+[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,2}[\s.!,]*$"
)
_LEADING = re.compile(r"^(?:(?:and|also|then|plus)\b[\s,]*)+", re.I)
_POINTS_BACK = re.compile(r"\b(it|that one|that order|this one|this order|them|those)\b", re.I)
_CUT = re.compile(
    r"(?<=[?!.;])\s+|;\s*|,?\s+(?:and also|and then|and|also|then|plus|as well as)\s+|,\s+(?=\w)",
    re.I,
)


def pieces(text: str) -> list[str]:
    """The message cut at every place a new request may start."""
    cut = [_LEADING.sub("", piece.strip(" ,;")) for piece in _CUT.split(text) if piece]
    return [piece for piece in cut if piece.strip(" ,;.")]


async def split_requests(
    text: str, classify: Classify, prepare: Prepare | None = None
) -> list[QueuedRequest]:
    """The requests of a message, in order; fewer than two means it is one request.
    `prepare` is given, before any is classified, the message and each piece that may be
    classified, so a classifier can embed them in one pass of its model."""
    parts = pieces(text)
    if len(parts) < 2:
        return []
    rests = [courtesy(part)[1] for part in parts]  # without a greeting or thanks
    if prepare is not None:
        await prepare([text, *(rest for rest in rests if _may_be_request(rest))])
    requests: list[QueuedRequest] = []
    carried = ""
    for rest in rests:
        if not rest:
            continue  # "hi", "thanks": no request
        named = order_ids(rest)
        if requests and (_continues(rest) or not _REQUEST_FORM.search(rest)):
            # "... and #W2 too", "... and the mouse", "..., I ordered it by mistake"
            requests[-1].text = f"{requests[-1].text} and {rest}"
            continue
        guess = await classify(rest) if _may_be_request(rest) else None
        if guess is not None and _new_request(guess, bool(named), requests):
            requests.append(QueuedRequest(text=f"{carried} {rest}".strip(), intent=guess.intent))
            carried = ""
        elif requests:
            requests[-1].text = f"{requests[-1].text} and {rest}"
        else:
            carried = f"{carried} {rest}".strip()  # a lead-in: "so about my order,"
    return _one_per_order(requests)


def _may_be_request(piece: str) -> bool:
    """False for a piece that is never a request of its own, so it is not classified (the
    model would embed it for nothing): a single word ("Amelia" in "thanks Amelia, that's
    all"), or the customer saying who they are ("this is Noah Smith")."""
    return len(piece.split()) > 1 and _INTRODUCTION.match(piece) is None


def _new_request(guess: IntentGuess, named: bool, requests: list[QueuedRequest]) -> bool:
    """True when a piece read as `guess` is a request of its own: a task that can be split
    off, guessed surely enough, and not more of the request before it. A piece naming an
    order says which one it is about, so a weaker guess at the task will do."""
    sure = LOW_CONFIDENCE if named and guess.intent in TASK_NAMES else SPLIT_CONFIDENCE
    if guess.intent not in SPLITTABLE or guess.score < sure:
        return False
    return not (requests and not named and _belongs(guess.intent, requests[-1].intent))


def _belongs(intent: str, previous: str) -> bool:
    """True when a piece read as `intent` is more of the request before it: the same
    task, or a detail of it ("return the puzzle, refund it to my visa")."""
    return same_task(intent, previous) or (previous, intent) in _DETAILS


def _continues(piece: str) -> bool:
    """True for a piece that only adds an order to the request before it: order ids and
    at most a couple of other words, none asking or telling anything ("#W2 too", "#W2
    are?"; not "track #W2", "has #W2 shipped?")."""
    words = [w for w in _WORD.findall(_ORDER_ID.sub(" ", piece).lower()) if w not in _FILLER]
    return bool(order_ids(piece)) and len(words) <= 2 and not any(w in _ASKING for w in words)


def _one_per_order(requests: list[QueuedRequest]) -> list[QueuedRequest]:
    """Splits "the status of #W1 and #W2" into one request per order; a request that
    points back ("and cancel it") is about the order of the one before it."""
    expanded: list[QueuedRequest] = []
    for request in requests:
        found = order_ids(request.text)
        if not found and expanded and expanded[-1].order_id and _POINTS_BACK.search(request.text):
            found = [expanded[-1].order_id]
        if len(found) > 1 and request.intent in TASK_NAMES:
            expanded.extend(
                QueuedRequest(text=request.text, intent=request.intent, order_id=o) for o in found
            )
        else:
            expanded.append(request.model_copy(update={"order_id": found[0] if found else None}))
    return expanded


def request_name(request: QueuedRequest) -> str:
    name = REQUEST_NAMES.get(request.intent, "your other request")
    return f"{name} ({request.order_id})" if request.order_id else name


async def take_queued(turn: OfflineTurn, start: Start, *, announce: bool = False) -> None:
    """Starts the waiting requests in order while nothing is being asked or confirmed.

    `announce` (the turn the requests were made): the first is answered as such, and if
    it needs the customer while others wait, the bot says what comes after it. Later
    ones open with "Next, ...:". A handoff drops what waits: a person takes it all.
    """
    state = turn.state
    first = announce
    while state.queued and state.flow is None and state.pending_action is None:
        if any(reply.handoff_requested for reply in turn.replies):
            break
        request = state.queued.pop(0)
        begin = len(turn.replies)
        said = turn.text
        turn.text = _about_one_order(request)
        try:
            await start(turn, request.intent, {"order_id": request.order_id} if request.order_id else None)
        finally:
            turn.text = said
        waiting = state.flow is not None or state.pending_action is not None
        if len(turn.replies) > begin and not first:
            reply = turn.replies[begin]
            turn.replies[begin] = reply.model_copy(
                update={"text": f"Next, {request_name(request)}: {reply.text}"}
            )
        elif first and waiting and state.queued and len(turn.replies) > begin:
            later = join_words([request_name(r) for r in state.queued])
            turn.replies.insert(begin, Reply(text=f"I'll start with {request_name(request)}, then {later}."))
        first = False
    if any(reply.handoff_requested for reply in turn.replies):
        state.queued = []


def _about_one_order(request: QueuedRequest) -> str:
    """The request's words without the other orders it named, so the task reads one."""
    if request.order_id is None:
        return request.text
    kept = request.order_id.removeprefix("#W")
    return " ".join(_ORDER_ID.sub(lambda m: m.group(0) if m.group(1) == kept else "", request.text).split())
