"""How the available functions are written into an observation, at three levels of detail.

BFCL's own prompt lists every function's full JSON doc (~4,000 tokens per API class), which does
not fit small models' contexts; the compact forms keep names, parameters and defaults:

- ``json``: BFCL's docs as they ship (name, description, parameters, response), one per line;
- ``brief``: one line per function, ``name(param: type, opt: type=default) - description``,
  the description being the doc's own "Tool description" cut to its first sentence;
- ``signatures``: one line per API class, ``Class: name(param, opt=default); ...``;
- ``names``: one line per API class, function names only (the smallest; parameters must then be
  known from training).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

DocStyle = Literal["json", "brief", "signatures", "names"]
_TYPES = {"string": "str", "integer": "int", "float": "float", "boolean": "bool", "array": "list",
          "dict": "dict", "tuple": "tuple", "any": "any"}
_BRIEF_CHARS = 100


def render_functions(groups: Sequence[tuple[str, Sequence[dict[str, Any]]]], style: DocStyle,
                     max_chars: int | None = None) -> str:
    """``groups``: (API class, its available docs) in order. With ``max_chars``, a class whose
    listing would take the text past it is listed by names only."""
    lines: list[str] = []
    used = 0
    for name, docs in groups:
        if not docs:
            continue
        text = _render_class(name, docs, style)
        if max_chars is not None and used + len(text) > max_chars and style != "names":
            text = _render_class(name, docs, "names")
        lines.append(text)
        used += len(text) + 1
    return "\n".join(lines)


def _render_class(name: str, docs: Sequence[dict[str, Any]], style: DocStyle) -> str:
    if style == "json":
        return "\n".join(json.dumps(doc, separators=(",", ":")) for doc in docs)
    if style == "brief":
        return "\n".join(f"{_signature(doc, typed=True)} - {_description(doc)}" for doc in docs)
    if style == "names":
        return f"{name}: " + ", ".join(doc["name"] for doc in docs)
    return f"{name}: " + "; ".join(_signature(doc, typed=False) for doc in docs)


def _signature(doc: dict[str, Any], typed: bool) -> str:
    parameters = doc.get("parameters", {})
    required = set(parameters.get("required", []))
    parts = []
    for name, spec in parameters.get("properties", {}).items():
        text = f"{name}: {_TYPES.get(spec.get('type', 'any'), spec.get('type', 'any'))}" if typed else name
        if name not in required:
            default = str(spec.get("default", "None"))
            # Docs write every default as a string; quote the ones that are strings.
            quoted = spec.get("type") == "string" and default != "None"
            text += f"={default!r}" if quoted else f"={default}"
        parts.append(text)
    return f"{doc['name']}({', '.join(parts)})"


def _description(doc: dict[str, Any]) -> str:
    text = doc.get("description", "")
    if "Tool description:" in text:
        text = text.split("Tool description:", 1)[1]
    text = text.strip()
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= _BRIEF_CHARS else first[: _BRIEF_CHARS - 3] + "..."


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"
