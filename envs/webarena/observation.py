"""The page as text: WebArena's accessibility-tree format.

Each line is one node of the page's accessibility tree (read through CDP's
``Accessibility.getFullAXTree``), indented by one tab per level::

    [1] RootWebArea 'One Stop Market' focused: True
        [2] link 'My Account'
        [3] searchbox 'Search' required: False

The rules follow WebArena's published observation: the role and the name (as Python ``repr``)
then the node's properties except ``focusable, editable, readonly, level, settable, multiline,
invalid`` (and ``url``, which newer Chromium releases add to links); nodes without a name are skipped (their children move up a level), and so are
unnamed property-less ``generic, img, list, strong, paragraph, banner, navigation, Section,
LabelText, Legend, listitem`` nodes; a ``StaticText`` line whose text already appears in one of
the three lines before it is dropped. Chromium's ``InlineTextBox`` children (they repeat their
``StaticText``) are skipped.

One difference, for reproducibility: WebArena shows Chromium's node ids, which change from one
page load to the next; we number the shown nodes 1, 2, 3... in document order, so the same page
state always reads the same and a replayed episode sees exactly what the original saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# WebArena's ignored properties, plus "url": Chromium releases newer than WebArena's attach the
# link target to every link, which WebArena's observations never showed (and it costs tokens).
IGNORED_PROPERTIES = frozenset({"focusable", "editable", "readonly", "level", "settable", "multiline", "invalid",
                                "url"})
EMPTY_SKIPPED_ROLES = frozenset({"generic", "img", "list", "strong", "paragraph", "banner", "navigation", "Section",
                                 "LabelText", "Legend", "listitem"})
SKIPPED_ROLES = frozenset({"InlineTextBox"})
_STATIC_TEXT = re.compile(r"\[\d+\] StaticText '([^']+)'")
TRUNCATION_NOTE = "[... the page goes on; scroll down to read more]"


@dataclass(frozen=True)
class Node:
    id: int
    role: str
    name: str
    backend_id: int | None


@dataclass
class PageTree:
    """A page's accessibility tree as the agent sees it, and how to find each shown node."""

    text: str
    nodes: dict[int, Node] = field(default_factory=dict)

    def find(self, role: str, name: str, nth: int = 0) -> Node | None:
        """The ``nth`` shown node with this role and name, in document order."""
        hits = [n for n in self.nodes.values() if n.role == role and n.name == name]
        return hits[nth] if nth < len(hits) else None


def _value(node: dict[str, Any], key: str) -> Any:
    return (node.get(key) or {}).get("value")


def _properties(node: dict[str, Any]) -> list[str]:
    out = []
    for prop in node.get("properties") or []:
        name = prop.get("name")
        value = (prop.get("value") or {})
        if name in IGNORED_PROPERTIES or "value" not in value:
            continue
        out.append(f"{name}: {value['value']}")
    return out


def format_tree(ax_nodes: list[dict[str, Any]], max_chars: int | None = None) -> PageTree:
    """Turn CDP's flat node list into the text observation and the id -> node map."""
    by_id: dict[str, dict[str, Any]] = {}
    for node in ax_nodes:
        by_id.setdefault(node["nodeId"], node)  # a few nodes are listed twice
    if not ax_nodes:
        return PageTree("")
    lines: list[tuple[int, str, Node | None]] = []
    counter = 0

    def visit(node: dict[str, Any], depth: int) -> None:
        nonlocal counter
        role, name = _value(node, "role"), _value(node, "name")
        shown = False
        if not node.get("ignored") and role is not None and name is not None and role not in SKIPPED_ROLES:
            role, name = str(role), str(name)
            props = _properties(node)
            empty = not name.strip()
            if not (empty and ((not props and role in EMPTY_SKIPPED_ROLES) or (props and role == "listitem"))):
                counter += 1
                text = f"[{counter}] {role} {name!r}" + (" " + " ".join(props) if props else "")
                lines.append((depth, text, Node(counter, role, name, node.get("backendDOMNodeId"))))
                shown = True
        for child_id in node.get("childIds") or []:
            child = by_id.get(child_id)
            if child is not None:
                visit(child, depth + 1 if shown else depth)

    visit(ax_nodes[0], 0)

    kept: list[tuple[int, str, Node | None]] = []
    for depth, text, node in lines:
        if node is not None and node.role == "StaticText":
            match = _STATIC_TEXT.search(text)
            if match is None or any(match.group(1) in previous for _, previous, _ in kept[-3:]):
                continue
        kept.append((depth, text, node))

    out, nodes, size = [], {}, 0
    for depth, text, node in kept:
        line = "\t" * depth + text
        if max_chars is not None and size + len(line) + 1 > max_chars:
            out.append(TRUNCATION_NOTE)
            break
        out.append(line)
        size += len(line) + 1
        if node is not None:
            nodes[node.id] = node
    return PageTree("\n".join(out), nodes)


def read_tree(cdp, max_chars: int | None = None) -> PageTree:
    """The page's tree through a CDP session attached to it."""
    return format_tree(cdp.send("Accessibility.getFullAXTree", {})["nodes"], max_chars)
