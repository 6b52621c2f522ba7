"""WebArena's action grammar, and how an action is found in a model's reply.

The grammar (element ids are the ``[id]`` numbers of the current observation)::

    click [id]                    hover [id]
    type [id] [text] [1|0]        (1, the default: press Enter after typing)
    press [key_comb]              (e.g. press [Enter], press [Control+a])
    scroll [down|up]
    new_tab    tab_focus [tab_index]    close_tab
    goto [url]    go_back    go_forward
    stop [answer]                 (stop without brackets: no answer)

A reply may carry its action in our ReAct format (``Action: click [12]``, optionally in
backticks) or in WebArena's own (``In summary, the next action I will perform is
```click [12]```"); the last ``Action:`` line wins, then the first triple-backtick block.
The grammar is parsed with WebArena's published patterns (the ``type`` text and the ``stop``
answer may themselves contain brackets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ActionKind = Literal["click", "type", "hover", "press", "scroll", "new_tab", "tab_focus", "close_tab", "goto",
                     "go_back", "go_forward", "stop"]
ELEMENT_KINDS = frozenset({"click", "type", "hover"})

GRAMMAR_HELP = (
    "click [id] | type [id] [text] [1 or 0] | hover [id] | press [key_comb] | scroll [down or up] | new_tab | "
    "tab_focus [tab_index] | close_tab | goto [url] | go_back | go_forward | stop [answer]"
)


class ActionParseError(ValueError):
    """The text is not an action of the grammar."""


@dataclass(frozen=True)
class BrowserAction:
    kind: ActionKind
    element_id: int | None = None
    text: str = ""
    """type: the text; press: the key combination; scroll: the direction; goto: the URL; stop: the answer."""
    press_enter: bool = False
    tab_index: int | None = None

    def __str__(self) -> str:
        """The canonical spelling: equal strings mean equivalent actions (WebArena's is_equivalent)."""
        match self.kind:
            case "click" | "hover":
                return f"{self.kind} [{self.element_id}]"
            case "type":
                return f"type [{self.element_id}] [{self.text}] [{int(self.press_enter)}]"
            case "press" | "scroll" | "goto" | "stop":
                return f"{self.kind} [{self.text}]"
            case "tab_focus":
                return f"tab_focus [{self.tab_index}]"
            case _:
                return self.kind


_PATTERNS: dict[str, re.Pattern[str]] = {
    "click": re.compile(r"click ?\[(\d+)\]"),
    "hover": re.compile(r"hover ?\[(\d+)\]"),
    "type": re.compile(r"type ?\[(\d+)\] ?\[(.+)\] ?\[(\d+)\]", re.DOTALL),
    "press": re.compile(r"press ?\[(.+)\]"),
    "scroll": re.compile(r"scroll ?\[?(up|down)\]?"),
    "goto": re.compile(r"goto ?\[(.+)\]"),
    "tab_focus": re.compile(r"tab_focus ?\[(\d+)\]"),
    "stop": re.compile(r"stop ?\[(.+)\]", re.DOTALL),
}
_BARE = frozenset({"new_tab", "close_tab", "go_back", "go_forward"})


def parse_action(text: str) -> BrowserAction:
    """One action of the grammar, or :class:`ActionParseError` saying what is wrong."""
    text = text.strip()
    if not text:
        raise ActionParseError("empty action")
    verb = text.split("[")[0].strip() if "[" in text else text.split()[0].strip()
    if verb in _BARE:
        return BrowserAction(verb)  # type: ignore[arg-type]
    if verb == "stop" and "[" not in text:
        return BrowserAction("stop", text="")
    if verb == "type" and not (text.endswith("[0]") or text.endswith("[1]")):
        text += " [1]"
    pattern = _PATTERNS.get(verb)
    if pattern is None:
        raise ActionParseError(f"unknown action {verb[:40]!r}")
    match = pattern.search(text)
    if match is None:
        if verb == "stop":
            return BrowserAction("stop", text="")
        raise ActionParseError(f"malformed {verb} action {text[:80]!r}")
    groups = match.groups()
    match verb:
        case "click" | "hover":
            return BrowserAction(verb, element_id=int(groups[0]))  # type: ignore[arg-type]
        case "type":
            return BrowserAction("type", element_id=int(groups[0]), text=groups[1], press_enter=groups[2] == "1")
        case "tab_focus":
            return BrowserAction("tab_focus", tab_index=int(groups[0]))
        case _:
            return BrowserAction(verb, text=groups[0].strip() if verb != "stop" else groups[0])  # type: ignore[arg-type]


_ACTION_LINE = re.compile(r"^[ \t]*\**[ \t]*action[ \t]*\**[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_BACKTICKS = re.compile(r"```(?:[a-z]*\n)?(.*?)```", re.DOTALL)


def extract_action(reply: str) -> str | None:
    """The action text of a reply (ReAct ``Action:`` line, else WebArena's backtick block)."""
    lines = [m.strip() for m in _ACTION_LINE.findall(reply) if m.strip()]
    if lines:
        last = lines[-1]
        fenced = _BACKTICKS.search(last)
        if fenced:
            return fenced.group(1).strip()
        return last.strip("`").strip()
    fenced = _BACKTICKS.search(reply)
    if fenced and fenced.group(1).strip():
        return fenced.group(1).strip()
    return None


# Playwright's key names for the spellings models and WebArena's prompts use.
_KEY_NAMES = {
    "ctrl": "Control", "control": "Control", "cmd": "Meta", "command": "Meta", "meta": "Meta", "alt": "Alt",
    "option": "Alt", "shift": "Shift", "enter": "Enter", "return": "Enter", "esc": "Escape", "escape": "Escape",
    "tab": "Tab", "backspace": "Backspace", "delete": "Delete", "del": "Delete", "space": "Space",
    "up": "ArrowUp", "down": "ArrowDown", "left": "ArrowLeft", "right": "ArrowRight", "arrowup": "ArrowUp",
    "arrowdown": "ArrowDown", "arrowleft": "ArrowLeft", "arrowright": "ArrowRight", "pageup": "PageUp",
    "pagedown": "PageDown", "home": "Home", "end": "End",
}


def key_combination(text: str) -> str:
    """``ctrl+a`` -> ``Control+a``; single characters and F-keys pass through."""
    parts = [p.strip() for p in text.split("+") if p.strip()]
    if not parts:
        raise ActionParseError("press needs a key, e.g. press [Enter]")
    return "+".join(_KEY_NAMES.get(p.lower(), p) for p in parts)
