"""BFCL v3 multi-turn entries, their ground truth and function docs, read from ``bfcl-eval``.

The package ships (as ``BFCL_v4_*`` files; the multi-turn categories are BFCL v3's) 200 entries
per category under ``bfcl_eval/data``, the ground truth under ``data/possible_answer`` and one
JSON-lines doc file per API class under ``data/multi_turn_func_doc``. An entry holds the user
turns (``question``), the APIs' start state (``initial_config``), the ``involved_classes``,
functions hidden from it (``excluded_function``) and, in ``miss_func``, functions that only
appear at a later turn (``missed_function``: turn index -> names).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

CATEGORIES = ("base", "miss_func", "miss_param", "long_context")
OOD_CATEGORIES = ("miss_func", "miss_param", "long_context")
# The eight simulated APIs of the multi-turn categories, and their doc files.
DOC_FILES = {
    "GorillaFileSystem": "gorilla_file_system.json",
    "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json",
    "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json",
    "VehicleControlAPI": "vehicle_control.json",
}
# What BFCL's prompting handlers send as the user message of a miss_func turn that adds functions.
ADDED_FUNCTIONS_MESSAGE = "I have updated some more functions you can choose from. What about now?"


@dataclass(frozen=True)
class Entry:
    """One multi-turn conversation with its ground truth."""

    id: str
    category: str
    index: int
    turns: tuple[str, ...]
    """The user's message of each turn ("" where a miss_func turn only adds functions)."""
    initial_config: dict[str, Any] = field(hash=False, compare=False)
    involved_classes: tuple[str, ...]
    excluded: frozenset[str]
    added_at: dict[str, int] = field(hash=False, compare=False)
    """Function name -> the turn from which it is available (miss_func's held-out functions)."""
    ground_truth: tuple[tuple[str, ...], ...]
    """Per turn, the expected calls as BFCL writes them (Python call syntax)."""
    sha256: str

    @property
    def long_context(self) -> bool:
        return self.category == "long_context"

    def available(self, turn: int) -> list[str]:
        """The function names the agent may call at ``turn``, in doc order."""
        return [d["name"] for c in self.involved_classes for d in function_docs(c)
                if d["name"] not in self.excluded and self.added_at.get(d["name"], 0) <= turn]


def bfcl_version() -> str:
    return importlib.metadata.version("bfcl-eval")


def _data_dir():
    return resources.files("bfcl_eval") / "data"


def _jsonl(path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def function_docs(class_name: str) -> tuple[dict[str, Any], ...]:
    """BFCL's function docs of one API class (name, description, parameters, response)."""
    return tuple(_jsonl(_data_dir() / "multi_turn_func_doc" / DOC_FILES[class_name]))


@cache
def entries(category: str) -> tuple[Entry, ...]:
    questions = _jsonl(_data_dir() / f"BFCL_v4_multi_turn_{category}.json")
    answers = {a["id"]: a["ground_truth"] for a in _jsonl(_data_dir() / "possible_answer" / f"BFCL_v4_multi_turn_{category}.json")}
    out = []
    for raw in questions:
        truth = answers[raw["id"]]
        blob = json.dumps({"entry": raw, "ground_truth": truth}, sort_keys=True).encode()
        turns = tuple(" ".join(m["content"] for m in turn if m.get("role") == "user") for turn in raw["question"])
        added = {name: int(t) for t, names in raw.get("missed_function", {}).items() for name in names}
        out.append(Entry(
            id=raw["id"], category=category, index=int(raw["id"].rsplit("_", 1)[1]), turns=turns,
            initial_config=raw.get("initial_config", {}), involved_classes=tuple(raw["involved_classes"]),
            excluded=frozenset(raw.get("excluded_function", [])), added_at=added,
            ground_truth=tuple(tuple(turn) for turn in truth), sha256=hashlib.sha256(blob).hexdigest()))
    return tuple(out)


@cache
def entry(entry_id: str) -> Entry:
    category = next((c for c in sorted(CATEGORIES, key=len, reverse=True) if entry_id.startswith(f"multi_turn_{c}_")), None)
    if category is None:
        raise KeyError(entry_id)
    found = {e.id: e for e in entries(category)}
    return found[entry_id]


def consistency_problem(e: Entry) -> str | None:
    """Why an entry's ground truth cannot be played under its own function availability, or None.

    (One does not: ``multi_turn_miss_func_49`` calls ``tail`` two turns before the turn that adds it.)
    """
    if len(e.ground_truth) != len(e.turns):
        return f"{len(e.turns)} turns but {len(e.ground_truth)} ground-truth turns"
    for turn, calls in enumerate(e.ground_truth):
        allowed = set(e.available(turn))
        for text in calls:
            name = ast.parse(text, mode="eval").body.func.id  # type: ignore[attr-defined]
            if name not in allowed:
                return f"its ground truth calls {name} at turn {turn}, where it is not available"
    return None


def split_base(n_test: int, seed: str = "bfcl-split-v1") -> tuple[list[Entry], list[Entry]]:
    """(train, test): base entries ordered by a hash of their id; the first ``n_test`` are test."""
    base = [e for e in entries("base") if consistency_problem(e) is None]
    ranked = sorted(base, key=lambda e: hashlib.sha256(f"{seed}|{e.id}".encode()).hexdigest())
    test = sorted(ranked[:n_test], key=lambda e: e.index)
    train = sorted(ranked[n_test:], key=lambda e: e.index)
    return train, test


def ood_entries(categories: Sequence[str], scenario_indices: set[int] | None, per_category: int | None) -> list[Entry]:
    """Entries of the ood categories (whose scenario index is in ``scenario_indices``, if given)."""
    out = []
    for category in categories:
        chosen = [e for e in entries(category)
                  if consistency_problem(e) is None and (scenario_indices is None or e.index in scenario_indices)]
        out.extend(chosen[:per_category] if per_category is not None else chosen)
    return out
