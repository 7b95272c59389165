"""Customer activities with card numbers and bank details removed, at the app's doors
(the local Direct Line and `/api/messages`), before anything stores, logs or answers
them. What was removed is noted in `channelData.aftercare.redacted`, so the bot can tell
the customer."""

from __future__ import annotations

from typing import Any

from providers.safety.redaction import redact

NOTICE = (
    "For your security I removed the {what} from your message. Please don't share card or bank "
    "details in this chat: we never need them here."
)


def redact_activity(body: dict[str, Any]) -> dict[str, Any]:
    text = body.get("text")
    if not isinstance(text, str) or not text:
        return body
    result = redact(text)
    if not result.changed:
        return body
    channel_data = body.get("channelData") if isinstance(body.get("channelData"), dict) else {}
    aftercare = dict(channel_data.get("aftercare") or {}) if isinstance(channel_data, dict) else {}
    aftercare["redacted"] = sorted(set(result.removed))
    return {**body, "text": result.text, "channelData": {**(channel_data or {}), "aftercare": aftercare}}


def redaction_notice(channel_data: Any) -> str | None:
    """The sentence for the customer when their message had something removed."""
    if not isinstance(channel_data, dict):
        return None
    removed = (
        (channel_data.get("aftercare") or {}).get("redacted")
        if isinstance(channel_data.get("aftercare"), dict)
        else None
    )
    if not removed:
        return None
    kinds = [str(kind) for kind in removed]
    what = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]
    return NOTICE.format(what=what)
