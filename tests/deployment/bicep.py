"""Reads Bicep files with the tree-sitter Bicep grammar (no Bicep CLI installs from the package
registries: it is a binary from GitHub releases), so the tests can check what a compiler
would catch first: syntax, symbols that are never declared, a module called with a
parameter it does not have or without one it requires, an output read that a module does
not produce, and the resource types and API versions in use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

_PARSER = Parser(Language(tree_sitter_bicep.language()))

# Functions and namespaces Bicep provides: identifiers a template may use undeclared.
_BUILTINS = {"az", "sys"}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Param:
    name: str
    type: str
    has_default: bool
    decorators: list[str]


@dataclass
class Resource:
    symbol: str
    type: str
    api_version: str
    existing: bool
    node: Node


@dataclass
class Module:
    symbol: str
    path: str
    params: dict[str, Node]
    node: Node


@dataclass
class BicepFile:
    path: Path
    text: str
    root: Node
    params: dict[str, Param] = field(default_factory=dict)
    variables: set[str] = field(default_factory=set)
    resources: dict[str, Resource] = field(default_factory=dict)
    modules: dict[str, Module] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def symbols(self) -> set[str]:
        return set(self.params) | self.variables | set(self.resources) | set(self.modules)

    def syntax_errors(self) -> list[str]:
        found: list[str] = []
        for node in _walk(self.root):
            if node.type == "ERROR" or node.is_missing:
                line, column = node.start_point
                found.append(f"{self.path.name}:{line + 1}:{column + 1}: {_text(node)[:60]!r}")
        return found

    def undeclared_identifiers(self) -> list[str]:
        """Identifiers read in expressions that name no declaration, loop variable or builtin."""
        loop_variables = {
            _text(child)
            for node in _walk(self.root)
            if node.type == "for_statement"
            for index, child in enumerate(node.children)
            if node.field_name_for_child(index) == "initializer" or child.type == "for_variable_block"
        }
        loop_variables |= {
            _text(grandchild)
            for node in _walk(self.root)
            if node.type == "for_variable_block"
            for grandchild in node.children
            if grandchild.type == "identifier"
        }
        known = self.symbols | loop_variables | _BUILTINS
        wrong = []
        for node in _walk(self.root):
            if node.type != "identifier" or _is_declaration_name(node) or _is_key_or_callee(node):
                continue
            name = _text(node)
            if name not in known:
                wrong.append(f"{self.path.name}:{node.start_point[0] + 1}: {name}")
        return wrong

    def unused_symbols(self) -> list[str]:
        """Parameters and variables declared but never read (Bicep's no-unused-params/vars)."""
        read = {
            _text(node)
            for node in _walk(self.root)
            if node.type == "identifier" and not _is_declaration_name(node) and not _is_key_or_callee(node)
        }
        return sorted((set(self.params) | self.variables) - read)

    def module_output_reads(self) -> list[tuple[str, str, int]]:
        """(module symbol, output name, line) for every `module.outputs.name` in the file."""
        reads = []
        for node in _walk(self.root):
            if node.type != "member_expression":
                continue
            inner = node.child_by_field_name("object")
            prop = node.child_by_field_name("property")
            if inner is None or prop is None or inner.type != "member_expression":
                continue
            base = inner.child_by_field_name("object")
            middle = inner.child_by_field_name("property")
            if (
                base is not None
                and middle is not None
                and _text(middle) == "outputs"
                and _text(base) in self.modules
            ):
                reads.append((_text(base), _text(prop), node.start_point[0] + 1))
        return reads

    def role_definition_ids(self) -> set[str]:
        """Every GUID written as a string literal: the role definitions a template grants."""
        return {
            match
            for node in _walk(self.root)
            if node.type == "string_content"
            for match in _GUID.findall(_text(node))
        }


def parse(path: Path) -> BicepFile:
    text = path.read_text(encoding="utf-8")
    tree = _PARSER.parse(text.encode())
    parsed = BicepFile(path, text, tree.root_node)
    pending_decorators: list[str] = []
    for node in tree.root_node.children:
        if node.type == "decorators":
            pending_decorators = [_decorator_name(d) for d in node.children if d.type == "decorator"]
            continue
        name = _first(node, "identifier")
        if node.type == "parameter_declaration" and name is not None:
            type_node = _first(node, "type")
            parsed.params[_text(name)] = Param(
                _text(name),
                _text(type_node) if type_node else "",
                any(child.type == "=" for child in node.children),
                pending_decorators,
            )
        elif node.type == "variable_declaration" and name is not None:
            parsed.variables.add(_text(name))
        elif node.type == "resource_declaration" and name is not None:
            kind = _string_value(_first(node, "string"))
            resource_type, _, api_version = kind.partition("@")
            existing = any(child.type == "existing" for child in node.children)
            parsed.resources[_text(name)] = Resource(_text(name), resource_type, api_version, existing, node)
        elif node.type == "module_declaration" and name is not None:
            body = _first(node, "object")
            params_node = _property(body, "params") if body is not None else None
            params = {}
            if params_node is not None and params_node.type == "object":
                params = {_text(key): value for key, value in _properties(params_node)}
            path_value = _string_value(_first(node, "string"))
            parsed.modules[_text(name)] = Module(_text(name), path_value, params, node)
        elif node.type == "output_declaration" and name is not None:
            type_node = _first(node, "type")
            parsed.outputs[_text(name)] = _text(type_node) if type_node else ""
        pending_decorators = []
    return parsed


def object_literal(node: Node) -> dict[str, Node]:
    """An object expression's properties, key -> value node."""
    if node.type != "object":
        raise ValueError(f"not an object: {_text(node)[:60]}")
    return {_text(key): value for key, value in _properties(node)}


def string_value(node: Node) -> str | None:
    """A plain string literal's value, or None for any other expression (interpolations too)."""
    if node.type != "string" or any(child.type == "interpolation" for child in node.children):
        return None
    return _string_value(node)


def text(node: Node) -> str:
    return _text(node)


def _walk(node: Node) -> list[Node]:
    nodes, stack = [], [node]
    while stack:
        current = stack.pop()
        nodes.append(current)
        stack.extend(reversed(current.children))
    return nodes


def _text(node: Node) -> str:
    return (node.text or b"").decode()


def _first(node: Node, kind: str) -> Node | None:
    return next((child for child in node.children if child.type == kind), None)


def _string_value(node: Node | None) -> str:
    if node is None:
        return ""
    return "".join(_text(child) for child in node.children if child.type == "string_content")


def _properties(node: Node) -> list[tuple[Node, Node]]:
    pairs = []
    for prop in node.children:
        if prop.type != "object_property":
            continue
        named = [child for child in prop.children if child.type not in {":", ","}]
        if len(named) >= 2:
            pairs.append((named[0], named[-1]))
    return pairs


def _property(node: Node, key: str) -> Node | None:
    return next((value for name, value in _properties(node) if _text(name) == key), None)


def _decorator_name(node: Node) -> str:
    call = _first(node, "call_expression")
    callee = call.child_by_field_name("function") if call is not None else None
    return _text(callee) if callee is not None else _text(node).lstrip("@")


_DECLARATIONS = {
    "parameter_declaration",
    "variable_declaration",
    "resource_declaration",
    "module_declaration",
    "output_declaration",
}


def _is_declaration_name(node: Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    if parent.type == "for_variable_block":
        return True
    return parent.type in _DECLARATIONS and node == _first(parent, "identifier")


def _is_key_or_callee(node: Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    if parent.type == "object_property" and parent.children[0] == node:
        return True
    if parent.type == "call_expression" and parent.child_by_field_name("function") == node:
        return True
    if parent.type == "for_statement":
        index = parent.children.index(node)
        return parent.field_name_for_child(index) == "initializer"
    return parent.type in {"decorator", "type", "lambda_expression"}
