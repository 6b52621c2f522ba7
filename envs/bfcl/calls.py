"""Function calls in an agent's action text, parsed without evaluating anything.

Accepted forms (one action may hold several calls, executed in order):

- Python call syntax: ``cd(folder='documents')``, ``[mkdir(dir_name='temp'), ls()]``,
  ``cd(folder='a'); ls(a=True)``;
- a JSON list (or object) in BFCL's and the common tool-call shapes:
  ``[{"name": "cd", "arguments": {"folder": "a"}}]`` (``function``/``parameters`` also work).

The text is parsed with :func:`ast.parse` and every argument must be a literal
(:func:`ast.literal_eval` on its node: strings, numbers, booleans, None, lists, tuples, dicts,
sets). Anything else (attribute access, subscripts, names, nested calls, lambdas, comprehensions,
operators, ``*args``/``**kwargs``, private or dunder names) is a :class:`CallSyntaxError`. Which
names may be called is decided by the caller (see ``apis.py``), not here.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

MAX_ACTION_CHARS = 8000
"""Longer actions are refused before parsing (the longest ground-truth call has ~600 chars)."""
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class CallSyntaxError(ValueError):
    """The action text is not a list of plain function calls with literal arguments."""


@dataclass(frozen=True)
class Call:
    """One function call: its name, positional and keyword arguments (literal values)."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def text(self) -> str:
        """The call in Python syntax, keyword arguments in the given order."""
        parts = [repr(v) for v in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.name}({', '.join(parts)})"


def parse_calls(text: str) -> list[Call]:
    """The calls in ``text``, in order; raises :class:`CallSyntaxError` saying what is wrong."""
    text = _FENCE.sub("", text.strip()).strip().strip("`").strip()
    if not text:
        raise CallSyntaxError("no function call given")
    if len(text) > MAX_ACTION_CHARS:
        raise CallSyntaxError(f"the action is longer than {MAX_ACTION_CHARS} characters")
    if text[0] in "[{":
        from_json = _json_calls(text)
        if from_json is not None:
            return from_json
    return _python_calls(text)


def _python_calls(text: str) -> list[Call]:
    try:
        module = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CallSyntaxError(f"not valid call syntax ({type(exc).__name__})") from None
    nodes: list[ast.expr] = []
    for statement in module.body:
        if not isinstance(statement, ast.Expr):
            raise CallSyntaxError("only function calls are allowed (no statements)")
        value = statement.value
        nodes.extend(value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value])
    if not nodes:
        raise CallSyntaxError("no function call given")
    return [_call_of(node) for node in nodes]


def _call_of(node: ast.expr) -> Call:
    if not isinstance(node, ast.Call):
        raise CallSyntaxError(f"{_shown(node)} is not a function call")
    if not isinstance(node.func, ast.Name):
        raise CallSyntaxError(f"{_shown(node.func)} is not a plain function name (no attributes or expressions)")
    name = _checked_name(node.func.id)
    args = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            raise CallSyntaxError(f"{name}: *arguments are not allowed")
        args.append(_literal(name, arg))
    kwargs = []
    for keyword in node.keywords:
        if keyword.arg is None:
            raise CallSyntaxError(f"{name}: **arguments are not allowed")
        kwargs.append((keyword.arg, _literal(name, keyword.value)))
    return Call(name, tuple(args), tuple(kwargs))


def _literal(name: str, node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise CallSyntaxError(f"{name}: argument {_shown(node)} is not a literal value") from None


def _json_calls(text: str) -> list[Call] | None:
    """Calls from a JSON list/object, or None when the text is not JSON (Python syntax then)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise CallSyntaxError("no function call given")
    calls = []
    for item in items:
        if not isinstance(item, dict):
            return None  # e.g. a Python list of calls written with JSON-compatible syntax
        name = item.get("name", item.get("function"))
        if isinstance(name, dict):  # {"function": {"name": ..., "arguments": ...}}
            item, name = name, name.get("name")
        arguments = item.get("arguments", item.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                raise CallSyntaxError(f"{name}: arguments are not a JSON object") from None
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise CallSyntaxError('each JSON call needs "name" and an "arguments" object')
        name = _checked_name(name)
        calls.append(Call(name, (), tuple((str(k), v) for k, v in arguments.items())))
    return calls


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise CallSyntaxError(f"{name[:40]!r} is not an allowed function name (private and dunder names are refused)")
    return name


def _shown(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # unparse of odd nodes; the message only needs a hint
        text = type(node).__name__
    return text if len(text) <= 40 else text[:37] + "..."
