"""The tools: how either engine calls a tool.

`call` validates the arguments against the tool's schema, refuses customer tools until
the customer is verified, turns consequential tools into proposals for the confirmation
gate, records every call in the conversation state, and returns failures as text
(a `ToolResult` with `error`), never as exceptions, so a model can read and recover.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dialogs.tools.catalog import ALL_TOOLS
from dialogs.tools.definition import Tool, ToolContext, ToolResult
from dialogs.tools.gate import ConfirmationGate
from dialogs.turn import ActionRecord, DialogState, PendingAction
from shop import telemetry
from shop.errors import AftercareError, ConcurrencyConflict, RetailError, StoreUnavailable

if TYPE_CHECKING:
    from dialogs.catalog import ProductIndex
    from dialogs.knowledge import KnowledgeBase
    from shop.retail import RetailService

log = logging.getLogger(__name__)

# After this many failed verification attempts in one conversation the verification
# tools stop answering: guessing emails or name/zip pairs must not be a way to probe.
MAX_VERIFICATION_FAILURES = 5


class ToolRunner:
    """The tools over one `RetailService` (and policy knowledge base), with the gate."""

    def __init__(
        self,
        retail: RetailService,
        knowledge: KnowledgeBase | None = None,
        products: ProductIndex | None = None,
    ) -> None:
        self.retail = retail
        self.knowledge = knowledge
        self.products = products
        self.by_name: Mapping[str, Tool] = {tool.name: tool for tool in ALL_TOOLS}
        self.gate = ConfirmationGate(self._run_confirmed)

    def declared(self, name: str) -> Tool | None:
        """The declaration of the tool called `name`, if there is one."""
        return self.by_name.get(name)

    def schemas(self) -> list[dict[str, Any]]:
        """Every tool in the chat-completions `tools` format, for the GPT dialog."""
        return [tool.schema() for tool in self.by_name.values()]

    def context(self, state: DialogState) -> ToolContext:
        return ToolContext(retail=self.retail, knowledge=self.knowledge, state=state, products=self.products)

    async def call(
        self, name: str, arguments: Mapping[str, Any] | str | None, state: DialogState
    ) -> ToolResult:
        """Runs (or, for consequential tools, proposes) one tool call; never raises for
        a refusal, a bad argument or an unavailable store."""
        with telemetry.span("tool", **{"aftercare.tool": name}) as current:
            if arguments:
                telemetry.set_content(current, "aftercare.tool.arguments", str(arguments))
            result = await self._call(name, arguments, state)
            outcome = "proposed" if result.pending is not None else "ok" if result.ok else "refused"
            current.set_attribute("aftercare.tool.outcome", outcome)
            telemetry.TOOL_CALLS.labels(name if name in self.by_name else "unknown", outcome).inc()
            return result

    async def _call(
        self, name: str, arguments: Mapping[str, Any] | str | None, state: DialogState
    ) -> ToolResult:
        tool = self.by_name.get(name)
        if tool is None:
            return self._failed(state, name, f"there is no tool named {name}")
        try:
            parsed = self._parse(tool, arguments)
            context = self.context(state)
            if tool.access == "customer":
                _ = context.user_id  # raises NotVerified before anything is read
            if tool.summary is not None:
                summary = await tool.summary(context, parsed)
                pending = self.gate.propose(state, tool.name, parsed, summary)
                state.record_tool(tool.name, True, "proposed")
                return ToolResult(tool=tool.name, ok=True, pending=pending)
            if tool.verifies:
                return await self._verify(tool, context, parsed)
            data = await tool.run(context, parsed)
        except (RetailError, StoreUnavailable, ConcurrencyConflict) as exc:
            return self._failed(
                state, name, _customer_safe(exc), unavailable=isinstance(exc, StoreUnavailable)
            )
        state.record_tool(tool.name, True)
        return ToolResult(tool=tool.name, ok=True, data=data)

    async def _verify(self, tool: Tool, context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        state = context.state
        if state.verification_failures >= MAX_VERIFICATION_FAILURES:
            return self._failed(
                state, tool.name, "too many failed verification attempts; offer to connect a person instead"
            )
        try:
            user_id = str(await tool.run(context, arguments))
        except RetailError as exc:
            state.verification_failures += 1
            return self._failed(state, tool.name, str(exc))
        if state.verified_user_id != user_id:
            # A different customer now: nothing proposed for the previous one may run.
            state.pending_action = None
            state.verified_user_id = user_id
            profile = await self.retail.get_user_details(user_id, acting_user_id=user_id)
            state.customer_first_name = str((profile.get("name") or {}).get("first_name") or "") or None
        # Failures are not forgiven by a success: verifying as oneself again between
        # guesses must not buy another round of guesses at someone else's account.
        state.record_tool(tool.name, True)
        return ToolResult(tool=tool.name, ok=True, data=user_id)

    async def _run_confirmed(self, pending: PendingAction, state: DialogState) -> ToolResult:
        """Runs a confirmed proposal exactly as it was summarised (the gate calls this)."""
        tool = self.by_name[pending.tool]
        context = self.context(state)
        try:
            data = await tool.run(context, tool.validate(pending.arguments))
        except (RetailError, StoreUnavailable, ConcurrencyConflict) as exc:
            message = _customer_safe(exc)
            state.actions.append(
                ActionRecord(
                    turn=state.turn, tool=tool.name, arguments=pending.arguments, ok=False, message=message
                )
            )
            return self._failed(state, tool.name, message, unavailable=isinstance(exc, StoreUnavailable))
        state.actions.append(
            ActionRecord(
                turn=state.turn, tool=tool.name, arguments=pending.arguments, ok=True, message=pending.summary
            )
        )
        state.record_tool(tool.name, True, "confirmed")
        return ToolResult(tool=tool.name, ok=True, data=data)

    @staticmethod
    def _parse(tool: Tool, arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
        if arguments is None or arguments == "":
            raw: Any = {}
        elif isinstance(arguments, str):
            try:
                raw = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise RetailError(f"the arguments for {tool.name} are not valid JSON ({exc.msg})") from None
        else:
            raw = dict(arguments)
        if not isinstance(raw, dict):
            raise RetailError(f"the arguments for {tool.name} must be a JSON object")
        return tool.validate(raw)

    @staticmethod
    def _failed(state: DialogState, name: str, message: str, *, unavailable: bool = False) -> ToolResult:
        state.record_tool(name, False, message)
        return ToolResult(tool=name, ok=False, error=message, unavailable=unavailable)


def _customer_safe(exc: AftercareError) -> str:
    if isinstance(exc, StoreUnavailable):
        log.warning("order store unavailable during a tool call: %s", exc)
        return "the order system is not answering right now; nothing was changed, please try again shortly"
    return str(exc)
