"""The machinery behind the tools: a tool is a plain typed async function, and this
module derives its JSON schema and argument validation from the signature and docstring
(pydantic), the way openai-agents-python does, so each tool is written once.

The first parameter of every tool function is the `ToolContext`, which carries the
verified customer from `DialogState`. It is not part of the schema, so a model (or a
customer's text) can never name whose data a tool reads.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from dialogs.turn import DialogState, PendingAction
from shop.errors import RetailError

if TYPE_CHECKING:
    from dialogs.catalog import ProductIndex
    from dialogs.knowledge import KnowledgeBase
    from shop.retail import RetailService

Access = Literal["public", "customer"]
ToolFunction = Callable[..., Awaitable[Any]]
# Writes the exact summary a customer confirms, from the validated arguments; refuses
# (`RetailError`) what the shop's rules would refuse, before the customer is asked.
SummaryFunction = Callable[["ToolContext", dict[str, Any]], Awaitable[str]]


class NotVerified(RetailError):
    """A customer tool was called before the customer proved who they are."""


@dataclass
class ToolContext:
    """What a tool may use: the shop's rules, the policy documents, and the conversation."""

    retail: RetailService
    knowledge: KnowledgeBase | None
    state: DialogState
    products: ProductIndex | None = None

    @property
    def user_id(self) -> str:
        """The verified customer; refuses when there is none (never read from arguments)."""
        if not self.state.verified_user_id:
            raise NotVerified(
                "the customer is not verified yet: ask for the email on their account, "
                "or their full name and zip code"
            )
        return self.state.verified_user_id


class ToolResult(BaseModel):
    """A tool's outcome. `data` on success, `error` (one sentence) on refusal, and
    `pending` when a consequential action now waits for the customer's yes.
    `unavailable` marks a failure of the store, not a refusal: nothing is known about
    the order, so an engine must not read it as "not found"."""

    tool: str
    ok: bool
    data: Any = None
    error: str = ""
    pending: PendingAction | None = None
    unavailable: bool = False

    def model_text(self) -> str:
        """The text handed back to a language model as the tool's output."""
        if self.pending is not None:
            return (
                "NOT DONE YET. Show the customer exactly this summary and ask for an explicit yes; "
                f"it runs only if their next message is yes: {self.pending.summary}"
            )
        if not self.ok:
            return f"Error: {self.error}"
        return self.data if isinstance(self.data, str) else json.dumps(self.data, ensure_ascii=False)


@dataclass(frozen=True)
class Tool:
    """One tool: its function, its derived argument model, and how it may be used.

    A tool with a `summary` is consequential: it never runs when called; the call becomes
    a pending action with that exact summary, and only the confirmation gate runs it
    after the customer's yes. `verifies` marks the tools that establish who the customer
    is, `hands_off` the one that asks for a person, and `shows_order` the tools whose
    result is an order worth a card.
    """

    name: str
    description: str
    function: ToolFunction
    arguments: type[BaseModel]
    access: Access
    summary: SummaryFunction | None = None
    verifies: bool = False
    hands_off: bool = False
    shows_order: bool = False

    @property
    def consequential(self) -> bool:
        return self.summary is not None

    def schema(self) -> dict[str, Any]:
        """The tool in the chat-completions `tools` format."""
        parameters = _inline_definitions(self.arguments.model_json_schema())
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": parameters},
        }

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments checked against the schema; raises `RetailError` with the problems."""
        try:
            parsed = self.arguments.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
            )
            raise RetailError(f"invalid arguments for {self.name}: {problems}") from None
        return parsed.model_dump(mode="json")

    async def run(self, context: ToolContext, arguments: dict[str, Any]) -> Any:
        """Runs the function on validated arguments (JSON, as stored in a pending action),
        each parsed back into its declared type (an `Address`, a list ...)."""
        parsed = self.arguments.model_validate(arguments)
        return await self.function(context, **{name: getattr(parsed, name) for name in arguments})


def define_tool(
    function: ToolFunction,
    *,
    access: Access,
    summary: SummaryFunction | None = None,
    verifies: bool = False,
    hands_off: bool = False,
    shows_order: bool = False,
) -> Tool:
    """Builds a `Tool` from a function `async def name(ctx: ToolContext, ...) -> ...`."""
    description, argument_docs = _parse_docstring(inspect.getdoc(function) or "")
    hints = get_type_hints(function)
    fields: dict[str, Any] = {}
    parameters = list(inspect.signature(function).parameters.values())[1:]  # skip the context
    for parameter in parameters:
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (
            annotation,
            Field(default, description=argument_docs.get(parameter.name, "")),
        )
    model = create_model(
        _camel(function.__name__) + "Arguments",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )
    return Tool(
        name=function.__name__,
        description=description,
        function=function,
        arguments=model,
        access=access,
        summary=summary,
        verifies=verifies,
        hands_off=hands_off,
        shows_order=shows_order,
    )


def _inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema with nested models (`$ref`s to `$defs`) written in place and the
    titles pydantic adds removed: smaller, and read reliably by every model server."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = definitions[node["$ref"].rsplit("/", 1)[-1]]
                merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
                return resolve(merged)
            return {
                key: resolve(value)
                for key, value in node.items()
                if not (key == "title" and isinstance(value, str))
            }
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_ARG_LINE = re.compile(r"^\s{2,}(\w+):\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(description, {argument: description}) from a Google-style docstring."""
    head, _, args_block = doc.partition("\nArgs:\n")
    arguments: dict[str, str] = {}
    current = ""
    for line in args_block.splitlines():
        match = _ARG_LINE.match(line)
        if match:
            current = match.group(1)
            arguments[current] = match.group(2).strip()
        elif current and line.strip():
            arguments[current] += " " + line.strip()
    return " ".join(head.split()), arguments


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
